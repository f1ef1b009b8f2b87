// Schemas of the grid-sample ops.  Kernels are registered per device in
// cpu/grid_sample_kernel.cpp and cuda/grid_sample_kernel.cu; autograd and fake
// (meta) implementations live in torchsample/ops/compiled.py.
//
// interpolation: 0 bilinear, 1 nearest, 2 bicubic; padding: 0 zeros,
// 1 border, 2 reflection (ATen's numbering).  Outputs switched off by an
// output mask come back as empty tensors.
//
// tap_products (backward's third output, double backward's optional input):
// for every point and tap, the sum over channels of grad_output times the
// input at that tap, shape (b, points, taps per point), in the accumulation
// dtype.  The grid gradient is built from these, and the double backward of
// a loss on that gradient needs them again; passing them on saves it a
// second pass over the input.  Kernels that do not produce them (CUDA)
// return an empty tensor, and an empty or absent tensor makes the double
// backward compute them itself.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(torchsample, m) {
  m.def(
      "grid_sample(Tensor input, Tensor grid, int interpolation, int padding, "
      "bool align_corners, bool smoothstep) -> Tensor");
  m.def(
      "grid_sample_backward(Tensor grad_output, Tensor input, Tensor grid, int interpolation, "
      "int padding, bool align_corners, bool smoothstep, bool[3] output_mask) "
      "-> (Tensor grad_input, Tensor grad_grid, Tensor tap_products)");
  m.def(
      "grid_sample_double_backward(Tensor? grad_grad_input, Tensor? grad_grad_grid, "
      "Tensor grad_output, Tensor input, Tensor grid, Tensor? tap_products, "
      "int interpolation, int padding, bool align_corners, bool smoothstep, "
      "bool[3] output_mask) "
      "-> (Tensor grad_grad_output, Tensor grad_input, Tensor grad_grid)");
  // The feature map in channels-last memory, the layout the CPU kernels
  // read fastest (all channels of a pixel in one cache line); CPU only.
  m.def("channels_last_copy(Tensor input) -> Tensor");
}
