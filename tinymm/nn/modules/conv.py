"""``torch.nn.modules.conv``: ``_ConvNd`` (the base of every convolution and transposed
convolution, and of the lazy ones) and the layers, all tinymm's own classes."""
from tinymm.nn.conv import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d  # noqa: F401
from tinymm.nn.conv import ConvNdBase as _ConvNd  # noqa: F401
