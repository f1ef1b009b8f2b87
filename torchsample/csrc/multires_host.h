// Argument checks and table views of the multires ops, shared by the CPU and
// CUDA kernels. The kernels index every table with the level layout checked
// here and every per-point tensor with the number of points of `coords`, so
// any mismatch would read or write out of bounds.
#pragma once

#include <ATen/ATen.h>
#include <ATen/OpMathType.h>

#include <optional>
#include <type_traits>
#include <vector>

#include "multires.h"

namespace torchsample {
namespace multires {

// Checks coords against tables and resolutions; returns the levels' layout
// and sets `features` to the features per level.
inline std::vector<Level> check_args(const char* op, const at::Tensor& coords,
                                     at::TensorList tables, at::IntArrayRef resolutions,
                                     int64_t& features) {
  TORCH_CHECK(coords.dim() == 2 && (coords.size(1) == 2 || coords.size(1) == 3), op,
              ": coords must be (n, 2) or (n, 3), got shape ", coords.sizes());
  TORCH_CHECK(!tables.empty(), op, ": tables must hold at least one level");
  TORCH_CHECK(static_cast<int64_t>(tables.size()) == static_cast<int64_t>(resolutions.size()),
              op, ": ", tables.size(), " tables but ", resolutions.size(), " resolutions");
  const int64_t dims = coords.size(1);
  const auto dtype = tables[0].scalar_type();
  TORCH_CHECK(at::isFloatingType(dtype), op, ": tables must be floating point, got ", dtype);
  TORCH_CHECK(coords.scalar_type() == at::toOpMathType(dtype), op, ": coords must be ",
              at::toOpMathType(dtype), " for ", dtype, " tables, got ", coords.scalar_type());
  features = tables[0].dim() >= 2 ? tables[0].size(1) : 0;
  TORCH_CHECK(features > 0, op, ": tables[0] must have at least one feature, got shape ",
              tables[0].sizes());
  TORCH_CHECK(features <= kMaxFeatures, op, ": at most ", kMaxFeatures,
              " features per level, got ", features);
  std::vector<Level> levels;
  for (size_t l = 0; l < tables.size(); ++l) {
    const at::Tensor& table = tables[l];
    const int64_t n = resolutions[l];
    TORCH_CHECK(n >= 2, op, ": resolutions[", l, "] must be >= 2, got ", n);
    TORCH_CHECK(table.scalar_type() == dtype, op, ": tables[", l, "] has dtype ",
                table.scalar_type(), ", tables[0] ", dtype);
    TORCH_CHECK(table.device() == coords.device(), op, ": tables[", l, "] is on ",
                table.device(), ", coords on ", coords.device());
    if (table.dim() == 2) {
      const int64_t rows = table.size(0);
      TORCH_CHECK(rows > 0 && (rows & (rows - 1)) == 0, op, ": hashed tables[", l,
                  "] must have a power-of-two number of rows, got shape ", table.sizes());
      TORCH_CHECK(table.size(1) == features, op, ": tables[", l, "] has ", table.size(1),
                  " features, tables[0] ", features);
      levels.push_back({n, rows, true});
    } else {
      std::vector<int64_t> expected = {1, features};
      for (int64_t d = 0; d < dims; ++d) expected.push_back(n);
      TORCH_CHECK(table.sizes() == at::IntArrayRef(expected), op, ": dense tables[", l,
                  "] must have shape ", at::IntArrayRef(expected), " for resolution ", n,
                  ", got ", table.sizes());
      int64_t rows = 1;
      for (int64_t d = 0; d < dims; ++d) rows *= n;
      levels.push_back({n, rows, false});
    }
  }
  return levels;
}

inline void check_per_point(const char* op, const char* name, const at::Tensor& t,
                            const at::Tensor& coords, int64_t width, at::ScalarType dtype) {
  TORCH_CHECK(t.dim() == 2 && t.size(0) == coords.size(0) && t.size(1) == width, op, ": ",
              name, " must have shape (", coords.size(0), ", ", width, "), got ", t.sizes());
  TORCH_CHECK(t.scalar_type() == dtype, op, ": ", name, " must have dtype ", dtype, ", got ",
              t.scalar_type());
  TORCH_CHECK(t.device() == coords.device(), op, ": ", name, " must be on ", coords.device(),
              ", got ", t.device());
}

inline void check_like_tables(const char* op, const char* name, at::TensorList given,
                              at::TensorList tables) {
  TORCH_CHECK(given.size() == tables.size(), op, ": ", name, " must hold ", tables.size(),
              " tensors like tables, got ", given.size());
  for (size_t l = 0; l < tables.size(); ++l) {
    TORCH_CHECK(given[l].sizes() == tables[l].sizes() &&
                    given[l].scalar_type() == tables[l].scalar_type() &&
                    given[l].device() == tables[l].device(),
                op, ": ", name, "[", l, "] must match tables[", l, "] (shape ", tables[l].sizes(),
                ", ", tables[l].scalar_type(), ", ", tables[l].device(), "), got shape ",
                given[l].sizes(), ", ", given[l].scalar_type(), ", ", given[l].device());
  }
}

// The arguments of one op call, checked and in the layouts the kernels index.
struct Prepared {
  at::Tensor coords;       // (n, dims), contiguous
  at::Tensor grad_output;  // (n, levels * features), contiguous, or undefined
  at::Tensor gg_coords;    // (n, dims), contiguous, or undefined
  std::vector<at::Tensor> tables;
  std::vector<at::Tensor> gg_tables;  // empty, or one per level
  std::vector<Level> levels;
  int64_t features = 0;
  int64_t width() const { return features * static_cast<int64_t>(levels.size()); }
};

inline std::vector<at::Tensor> contiguous(at::TensorList tensors) {
  std::vector<at::Tensor> out;
  for (const auto& t : tensors) out.push_back(t.contiguous());
  return out;
}

// `grad_output`, `gg_coords` and `gg_tables` are checked when given.
inline Prepared prepare(const char* op, const at::Tensor& coords, at::TensorList tables,
                        at::IntArrayRef resolutions, const at::Tensor* grad_output = nullptr,
                        const std::optional<at::Tensor>* gg_coords = nullptr,
                        at::TensorList gg_tables = {}) {
  Prepared args;
  args.levels = check_args(op, coords, tables, resolutions, args.features);
  if (grad_output) {
    check_per_point(op, "grad_output", *grad_output, coords, args.width(),
                    tables[0].scalar_type());
    args.grad_output = grad_output->contiguous();
  }
  if (gg_coords && gg_coords->has_value() && (*gg_coords)->defined()) {
    check_per_point(op, "grad_grad_coords", **gg_coords, coords, coords.size(1),
                    coords.scalar_type());
    args.gg_coords = (*gg_coords)->contiguous();
  }
  if (!gg_tables.empty()) {
    check_like_tables(op, "grad_grad_tables", gg_tables, tables);
    args.gg_tables = contiguous(gg_tables);
  }
  args.coords = coords.contiguous();
  args.tables = contiguous(tables);
  return args;
}

// Placeholders for outputs an output mask switched off.
inline std::vector<at::Tensor> empty_like_each(at::TensorList tables) {
  std::vector<at::Tensor> out;
  for (const auto& t : tables) out.push_back(at::empty({0}, t.options()));
  return out;
}

inline at::Tensor empty_unless(bool wanted, const at::Tensor& like) {
  return wanted ? at::empty_like(like) : at::empty({0}, like.options());
}

template <typename Fn>
void dispatch_dims(int64_t dims, Fn fn) {
  if (dims == 2) {
    fn(std::integral_constant<int, 2>());
  } else {
    fn(std::integral_constant<int, 3>());
  }
}

}  // namespace multires
}  // namespace torchsample
