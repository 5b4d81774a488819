"""torch_fa.py - feedback alignment's layers as PyTorch autograd functions.

Written from the rule's definition, not from this library, for the PyTorch
references: a conv or dense layer computes its forward pass with W and
sends its error down through a fixed tensor B of W's shape; its weight and
bias gradients are the true ones.  Import it after the caller has set its
thread counts (it imports torch).
"""
import torch
import torch.nn.functional as F


class FAConv(torch.autograd.Function):
    """conv2d(x, W, b, stride, pad) whose input gradient goes through B."""

    @staticmethod
    def forward(ctx, x, w, b, feedback, stride=1, pad=0):
        ctx.save_for_backward(x, feedback)
        ctx.stride, ctx.pad, ctx.wshape = stride, pad, w.shape
        return F.conv2d(x, w, b, stride, pad)

    @staticmethod
    def backward(ctx, grad):
        x, feedback = ctx.saved_tensors
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.nn.grad.conv2d_input(x.shape, feedback, grad, ctx.stride, ctx.pad)
        grad_w = torch.nn.grad.conv2d_weight(x, ctx.wshape, grad, ctx.stride, ctx.pad)
        return grad_x, grad_w, grad.sum((0, 2, 3)), None, None, None


class FALinear(torch.autograd.Function):
    """x W^T + b whose input gradient goes through B."""

    @staticmethod
    def forward(ctx, x, w, b, feedback):
        ctx.save_for_backward(x, feedback)
        return torch.addmm(b, x, w.t())

    @staticmethod
    def backward(ctx, grad):
        x, feedback = ctx.saved_tensors
        grad_x = grad.mm(feedback) if ctx.needs_input_grad[0] else None
        return grad_x, grad.t().mm(x), grad.sum(0), None
