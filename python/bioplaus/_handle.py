"""What every class wrapping a library handle shares: ``with`` support and
release on garbage collection, both through the class's ``close()``."""


class Handle:
    """Base of the handle classes; subclasses define an idempotent close()."""

    def close(self):
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: the library may be gone
            pass
