// Multi-resolution grid encoding on the CPU: forward, backward and double
// backward of every level in one call.
//
// Per-point outputs (features, coordinate gradients) are computed in parallel
// over points. Table gradients are scattered in parallel over levels, each
// level by one thread in point order: no two threads write the same table,
// so the accumulation needs no atomics and is deterministic.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <tuple>
#include <vector>

#include "../multires_host.h"

namespace torchsample {
namespace multires {
namespace {

// Points per chunk of the per-point passes (see by_chunk_and_level).
constexpr int64_t kChunk = 2048;

// Runs fn(l, p, totals) for every level l and point p: chunks of points in
// parallel, and inside a chunk level by level, so that the chunk's reads of
// one level's table (megabytes, read at hashed, scattered rows) stay in
// cache. `totals` holds the point's DIMS accumulators for sums over levels;
// done(p, totals) runs once per point after its last level.
template <typename acc_t, int DIMS, typename Fn, typename Done>
void by_chunk_and_level(int64_t n_points, size_t n_levels, Fn fn, Done done) {
  at::parallel_for(0, n_points, kChunk, [&](int64_t begin, int64_t end) {
    std::vector<acc_t> totals;
    for (int64_t first = begin; first < end; first += kChunk) {
      const int64_t last = std::min(end, first + kChunk);
      totals.assign(static_cast<size_t>((last - first) * DIMS), acc_t(0));
      for (size_t l = 0; l < n_levels; ++l) {
        for (int64_t p = first; p < last; ++p) fn(l, p, totals.data() + (p - first) * DIMS);
      }
      for (int64_t p = first; p < last; ++p) done(p, totals.data() + (p - first) * DIMS);
    }
  });
}

template <typename scalar_t>
struct Tables {
  std::vector<const scalar_t*> data;
  std::vector<Level> levels;
  int64_t features;
};

template <typename scalar_t>
Tables<scalar_t> view_tables(const std::vector<at::Tensor>& tables,
                             const std::vector<Level>& levels, int64_t features) {
  Tables<scalar_t> view{{}, levels, features};
  for (const auto& table : tables) view.data.push_back(table.data_ptr<scalar_t>());
  return view;
}

// Feature f of table row `row`, in the level's layout.
template <typename scalar_t>
inline int64_t offset(const Level& level, int64_t features, int64_t row, int64_t f) {
  return level.hashed ? row * features + f : f * level.rows + row;
}

template <typename scalar_t, int DIMS>
void forward_kernel(const Tables<scalar_t>& tables, const at::Tensor& coords, bool smoothstep,
                    at::Tensor& output) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t n_points = coords.size(0);
  const int64_t features = tables.features;
  const int64_t width = output.size(1);
  const acc_t* x = coords.data_ptr<acc_t>();
  scalar_t* out = output.data_ptr<scalar_t>();
  by_chunk_and_level<acc_t, DIMS>(
      n_points, tables.levels.size(),
      [&](size_t l, int64_t p, acc_t*) {
        const Level& level = tables.levels[l];
        Stencil<acc_t, DIMS> s;
        build_stencil<acc_t, DIMS>(x + p * DIMS, level, smoothstep, s);
        for (int64_t f = 0; f < features; ++f) {
          acc_t sum = 0;
          for (int k = 0; k < s.kCorners; ++k) {
            sum += s.weight[k] *
                   acc_t(tables.data[l][offset<scalar_t>(level, features, s.row[k], f)]);
          }
          out[p * width + l * features + f] = static_cast<scalar_t>(sum);
        }
      },
      [](int64_t, const acc_t*) {});
}

// Scatters weight-like values into one level's table gradient, in point
// order. `value(p, s, k, f)` is what corner k of point p adds to feature f.
template <typename scalar_t, int DIMS, typename Value>
void scatter_level(const Level& level, int64_t features, const at::Tensor& coords,
                   bool smoothstep, at::Tensor& grad_table, Value value) {
  using acc_t = at::opmath_type<scalar_t>;
  const acc_t* x = coords.data_ptr<acc_t>();
  acc_t* grad = grad_table.data_ptr<acc_t>();
  Stencil<acc_t, DIMS> s;
  for (int64_t p = 0; p < coords.size(0); ++p) {
    build_stencil<acc_t, DIMS>(x + p * DIMS, level, smoothstep, s);
    for (int k = 0; k < s.kCorners; ++k) {
      for (int64_t f = 0; f < features; ++f) {
        grad[offset<scalar_t>(level, features, s.row[k], f)] += value(p, s, k, f);
      }
    }
  }
}

// One opmath buffer per level, filled in parallel over levels, returned in
// the tables' dtype.
template <typename scalar_t, int DIMS, typename Value>
std::vector<at::Tensor> table_gradients(const Tables<scalar_t>& tables,
                                        const std::vector<at::Tensor>& like,
                                        const at::Tensor& coords, bool smoothstep, Value value) {
  using acc_t = at::opmath_type<scalar_t>;
  std::vector<at::Tensor> grads;
  for (const auto& table : like) {
    grads.push_back(at::zeros(table.sizes(), table.options().dtype(c10::CppTypeToScalarType<acc_t>::value)));
  }
  const int64_t n_levels = static_cast<int64_t>(tables.levels.size());
  at::parallel_for(0, n_levels, 1, [&](int64_t begin, int64_t end) {
    for (int64_t l = begin; l < end; ++l) {
      scatter_level<scalar_t, DIMS>(tables.levels[l], tables.features, coords, smoothstep,
                                    grads[l], [&](int64_t p, const Stencil<acc_t, DIMS>& s,
                                                  int k, int64_t f) { return value(l, p, s, k, f); });
    }
  });
  for (auto& grad : grads) grad = grad.to(like[0].scalar_type());
  return grads;
}

template <typename scalar_t, int DIMS>
void backward_kernel(const Tables<scalar_t>& tables, const std::vector<at::Tensor>& table_tensors,
                     const at::Tensor& grad_output, const at::Tensor& coords, bool smoothstep,
                     bool need_coords, bool need_tables, at::Tensor& grad_coords,
                     std::vector<at::Tensor>& grad_tables) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t features = tables.features;
  const int64_t width = grad_output.size(1);
  const scalar_t* g = grad_output.data_ptr<scalar_t>();
  if (need_coords) {
    const acc_t* x = coords.data_ptr<acc_t>();
    acc_t* gx = grad_coords.data_ptr<acc_t>();
    by_chunk_and_level<acc_t, DIMS>(
        coords.size(0), tables.levels.size(),
        [&](size_t l, int64_t p, acc_t* total) {
          const Level& level = tables.levels[l];
          Stencil<acc_t, DIMS> s;
          build_stencil<acc_t, DIMS>(x + p * DIMS, level, smoothstep, s);
          for (int k = 0; k < s.kCorners; ++k) {
            // Sum over features of the incoming gradient times the vertex value.
            acc_t gv = 0;
            for (int64_t f = 0; f < features; ++f) {
              gv += acc_t(g[p * width + l * features + f]) *
                    acc_t(tables.data[l][offset<scalar_t>(level, features, s.row[k], f)]);
            }
            for (int a = 0; a < DIMS; ++a) total[a] += d_corner(s, k, a) * gv;
          }
        },
        [&](int64_t p, const acc_t* total) {
          for (int a = 0; a < DIMS; ++a) gx[p * DIMS + a] = total[a];
        });
  }
  if (need_tables) {
    grad_tables = table_gradients<scalar_t, DIMS>(
        tables, table_tensors, coords, smoothstep,
        [&](int64_t l, int64_t p, const Stencil<acc_t, DIMS>& s, int k, int64_t f) {
          return s.weight[k] * acc_t(g[p * width + l * features + f]);
        });
  }
}

template <typename scalar_t, int DIMS>
void double_backward_kernel(const Tables<scalar_t>& tables,
                            const std::vector<at::Tensor>& table_tensors,
                            const at::Tensor& gg_coords, const Tables<scalar_t>* gg_tables,
                            const at::Tensor& grad_output, const at::Tensor& coords,
                            bool smoothstep, bool need_grad_output, bool need_coords,
                            bool need_tables, at::Tensor& grad_grad_output,
                            at::Tensor& grad_coords, std::vector<at::Tensor>& grad_tables) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t features = tables.features;
  const int64_t width = grad_output.size(1);
  const bool has_gg_coords = gg_coords.defined();
  const scalar_t* g = grad_output.data_ptr<scalar_t>();
  const acc_t* ggx = has_gg_coords ? gg_coords.data_ptr<acc_t>() : nullptr;
  const acc_t* x = coords.data_ptr<acc_t>();
  if (need_grad_output || need_coords) {
    scalar_t* ggo = need_grad_output ? grad_grad_output.data_ptr<scalar_t>() : nullptr;
    acc_t* gx = need_coords ? grad_coords.data_ptr<acc_t>() : nullptr;
    by_chunk_and_level<acc_t, DIMS>(
        coords.size(0), tables.levels.size(),
        [&](size_t l, int64_t p, acc_t* total) {
          const Level& level = tables.levels[l];
          const acc_t* gg = has_gg_coords ? ggx + p * DIMS : nullptr;
          const scalar_t* gl = g + p * width + l * features;
          Stencil<acc_t, DIMS> s;
          build_stencil<acc_t, DIMS>(x + p * DIMS, level, smoothstep, s);
          acc_t out[kMaxFeatures] = {};
          for (int k = 0; k < s.kCorners; ++k) {
            acc_t second[DIMS];
            const acc_t directional = along(s, k, gg, second);
            acc_t g_dot_value = 0;
            acc_t g_dot_gg_value = 0;
            for (int64_t f = 0; f < features; ++f) {
              const int64_t at = offset<scalar_t>(level, features, s.row[k], f);
              const acc_t value = acc_t(tables.data[l][at]);
              const acc_t gg_value = gg_tables ? acc_t(gg_tables->data[l][at]) : acc_t(0);
              out[f] += directional * value + s.weight[k] * gg_value;
              g_dot_value += acc_t(gl[f]) * value;
              g_dot_gg_value += acc_t(gl[f]) * gg_value;
            }
            if (need_coords) {
              for (int b = 0; b < DIMS; ++b) {
                total[b] += second[b] * g_dot_value + d_corner(s, k, b) * g_dot_gg_value;
              }
            }
          }
          if (need_grad_output) {
            for (int64_t f = 0; f < features; ++f) {
              ggo[p * width + l * features + f] = static_cast<scalar_t>(out[f]);
            }
          }
        },
        [&](int64_t p, const acc_t* total) {
          if (need_coords) {
            for (int b = 0; b < DIMS; ++b) gx[p * DIMS + b] = total[b];
          }
        });
  }
  if (need_tables) {
    grad_tables = table_gradients<scalar_t, DIMS>(
        tables, table_tensors, coords, smoothstep,
        [&](int64_t l, int64_t p, const Stencil<acc_t, DIMS>& s, int k, int64_t f) {
          if (!has_gg_coords) return acc_t(0);
          acc_t directional = 0;
          for (int a = 0; a < DIMS; ++a) directional += d_corner(s, k, a) * ggx[p * DIMS + a];
          return directional * acc_t(g[p * width + l * features + f]);
        });
  }
}

at::Tensor multires_encode_cpu(const at::Tensor& coords, at::TensorList tables,
                               at::IntArrayRef resolutions, bool smoothstep) {
  const Prepared args = prepare("multires_encode", coords, tables, resolutions);
  auto output = at::empty({coords.size(0), args.width()}, args.tables[0].options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, args.tables[0].scalar_type(),
                                  "multires_encode_cpu", [&] {
    const auto view = view_tables<scalar_t>(args.tables, args.levels, args.features);
    dispatch_dims(coords.size(1), [&](auto dims) {
      forward_kernel<scalar_t, decltype(dims)::value>(view, args.coords, smoothstep, output);
    });
  });
  return output;
}

std::tuple<at::Tensor, std::vector<at::Tensor>> multires_encode_backward_cpu(
    const at::Tensor& grad_output, const at::Tensor& coords, at::TensorList tables,
    at::IntArrayRef resolutions, bool smoothstep, std::array<bool, 2> output_mask) {
  const Prepared args =
      prepare("multires_encode_backward", coords, tables, resolutions, &grad_output);
  at::Tensor grad_coords = empty_unless(output_mask[0], args.coords);
  std::vector<at::Tensor> grad_tables = empty_like_each(args.tables);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, args.tables[0].scalar_type(),
                                  "multires_encode_backward_cpu", [&] {
    const auto view = view_tables<scalar_t>(args.tables, args.levels, args.features);
    dispatch_dims(coords.size(1), [&](auto dims) {
      backward_kernel<scalar_t, decltype(dims)::value>(
          view, args.tables, args.grad_output, args.coords, smoothstep, output_mask[0],
          output_mask[1], grad_coords, grad_tables);
    });
  });
  return {grad_coords, grad_tables};
}

std::tuple<at::Tensor, at::Tensor, std::vector<at::Tensor>> multires_encode_double_backward_cpu(
    const std::optional<at::Tensor>& gg_coords, at::TensorList gg_tables,
    const at::Tensor& grad_output, const at::Tensor& coords, at::TensorList tables,
    at::IntArrayRef resolutions, bool smoothstep, std::array<bool, 3> output_mask) {
  const Prepared args = prepare("multires_encode_double_backward", coords, tables, resolutions,
                                &grad_output, &gg_coords, gg_tables);
  at::Tensor grad_grad_output = empty_unless(output_mask[0], args.grad_output);
  at::Tensor grad_coords = empty_unless(output_mask[1], args.coords);
  std::vector<at::Tensor> grad_tables = empty_like_each(args.tables);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, args.tables[0].scalar_type(),
                                  "multires_encode_double_backward_cpu", [&] {
    const auto view = view_tables<scalar_t>(args.tables, args.levels, args.features);
    const auto gg_view = view_tables<scalar_t>(args.gg_tables, args.levels, args.features);
    dispatch_dims(coords.size(1), [&](auto dims) {
      double_backward_kernel<scalar_t, decltype(dims)::value>(
          view, args.tables, args.gg_coords, args.gg_tables.empty() ? nullptr : &gg_view,
          args.grad_output, args.coords, smoothstep, output_mask[0], output_mask[1],
          output_mask[2], grad_grad_output, grad_coords, grad_tables);
    });
  });
  return {grad_grad_output, grad_coords, grad_tables};
}

}  // namespace

TORCH_LIBRARY_IMPL(torchsample, CPU, m) {
  m.impl("multires_encode", &multires_encode_cpu);
  m.impl("multires_encode_backward", &multires_encode_backward_cpu);
  m.impl("multires_encode_double_backward", &multires_encode_double_backward_cpu);
}

}  // namespace multires
}  // namespace torchsample
