// Multi-resolution grid encoding (MultiResGrid): operator schemas. Kernels
// are registered per device in cpu/multires_kernel.cpp (and
// cuda/multires_kernel.cu); autograd and fakes live in
// torchsample/ops/compiled.py. See multires.h for the layout conventions.
//
// coords (n, dims) in the tables' accumulation dtype; tables one per level,
// (rows, F) for a hashed level or (1, F, N, N[, N]) for a dense one, with
// resolutions[l] = N; output (n, levels * F), level 0 first. Outputs switched
// off by an output mask come back as empty tensors.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(torchsample, m) {
  m.def("multires_encode(Tensor coords, Tensor[] tables, int[] resolutions, bool smoothstep) "
        "-> Tensor");
  m.def("multires_encode_backward(Tensor grad_output, Tensor coords, Tensor[] tables, "
        "int[] resolutions, bool smoothstep, bool[2] output_mask) "
        "-> (Tensor grad_coords, Tensor[] grad_tables)");
  m.def("multires_encode_double_backward(Tensor? grad_grad_coords, Tensor[] grad_grad_tables, "
        "Tensor grad_output, Tensor coords, Tensor[] tables, int[] resolutions, "
        "bool smoothstep, bool[3] output_mask) "
        "-> (Tensor grad_grad_output, Tensor grad_coords, Tensor[] grad_tables)");
}
