// Autograd for the grid-sample ops (schemas in grid_sample.cpp): the first
// derivative is grid_sample_backward, the second grid_sample_double_backward,
// and a third raises an error that points to the reference backend.
//
// In C++ rather than through torch.library.register_autograd so that a call
// runs no Python between the op call and the kernels, forward or backward:
// a small call's cost is mostly that overhead.  Fake (meta) implementations
// stay in torchsample/ops/compiled.py.
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>
#include <torch/csrc/autograd/graph_task.h>
#include <torch/library.h>

#include <array>
#include <initializer_list>
#include <optional>
#include <tuple>
#include <vector>

namespace torchsample {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

at::Tensor grid_sample_op(const at::Tensor& input, const at::Tensor& grid, int64_t interpolation,
                          int64_t padding, bool align_corners, bool smoothstep) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("torchsample::grid_sample", "")
                             .typed<at::Tensor(const at::Tensor&, const at::Tensor&, int64_t,
                                               int64_t, bool, bool)>();
  return op.call(input, grid, interpolation, padding, align_corners, smoothstep);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> grid_sample_backward_op(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& grid,
    int64_t interpolation, int64_t padding, bool align_corners, bool smoothstep,
    std::array<bool, 3> output_mask) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("torchsample::grid_sample_backward", "")
          .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor>(
              const at::Tensor&, const at::Tensor&, const at::Tensor&, int64_t, int64_t, bool,
              bool, std::array<bool, 3>)>();
  return op.call(grad_output, input, grid, interpolation, padding, align_corners, smoothstep,
                 output_mask);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> grid_sample_double_backward_op(
    const std::optional<at::Tensor>& grad_grad_input,
    const std::optional<at::Tensor>& grad_grad_grid, const at::Tensor& grad_output,
    const at::Tensor& input, const at::Tensor& grid, const std::optional<at::Tensor>& tap_products,
    int64_t interpolation, int64_t padding, bool align_corners, bool smoothstep,
    std::array<bool, 3> output_mask) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("torchsample::grid_sample_double_backward", "")
          .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor>(
              const std::optional<at::Tensor>&, const std::optional<at::Tensor>&,
              const at::Tensor&, const at::Tensor&, const at::Tensor&,
              const std::optional<at::Tensor>&, int64_t, int64_t, bool, bool,
              std::array<bool, 3>)>();
  return op.call(grad_grad_input, grad_grad_grid, grad_output, input, grid, tap_products,
                 interpolation, padding, align_corners, smoothstep, output_mask);
}

at::Tensor channels_last_copy_op(const at::Tensor& input) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("torchsample::channels_last_copy", "")
                             .typed<at::Tensor(const at::Tensor&)>();
  return op.call(input);
}

// Whether the running backward pass will execute `node`: the test of
// torch._C._will_engine_execute_node, on the engine's public C++ queries.
bool engine_will_execute(torch::autograd::Node* node) {
  const auto* exec_info = torch::autograd::get_current_graph_task_exec_info();
  const auto* nodes_in_graph = torch::autograd::get_current_graph_task_nodes_in_graph();
  if (exec_info == nullptr || nodes_in_graph == nullptr) {
    return true;  // not inside a backward pass: nothing to skip
  }
  if (nodes_in_graph->find(node) == nodes_in_graph->end()) {
    return false;
  }
  if (exec_info->empty()) {
    return true;  // .backward() without inputs= runs every node in the graph
  }
  const auto it = exec_info->find(node);
  return it != exec_info->end() && it->second.should_execute();
}

// Which of the differentiable inputs (in the op's argument order) this
// backward pass really needs.  needs_input_grad only says which require grad;
// an eikonal loss asks for the grid gradient alone while the features require
// grad too, and skipping the unwanted input gradient saves a full-size
// scatter.  The engine knows which nodes it will run; for leaves it cannot
// say during torch.autograd.grad, so their gradient is computed whenever they
// require grad (torchsample/ops/compiled.py hands the ops views of leaves).
template <size_t N>
std::array<bool, N> needed_gradients(AutogradContext* ctx,
                                     const std::array<const at::Tensor*, N>& inputs) {
  std::array<bool, N> mask{};
  for (size_t i = 0; i < N; ++i) {
    mask[i] = ctx->needs_input_grad(i);
    if (mask[i]) {
      const auto producer = inputs[i]->grad_fn();
      if (producer) {
        mask[i] = engine_will_execute(producer.get());
      }
    }
  }
  return mask;
}

struct Options {
  int64_t interpolation;
  int64_t padding;
  bool align_corners;
  bool smoothstep;

  // One entry of saved_data rather than four: each is a string-keyed insert.
  void save(AutogradContext* ctx) const {
    ctx->saved_data["options"] = std::vector<int64_t>{interpolation, padding, align_corners,
                                                      smoothstep};
  }

  static Options load(AutogradContext* ctx) {
    const auto values = ctx->saved_data["options"].toIntVector();
    return {values[0], values[1], values[2] != 0, values[3] != 0};
  }
};

// Whether a call on `tensors` records a graph; if not, the autograd kernels
// below call the op directly, without building a node or saving anything.
bool records_graph(std::initializer_list<const at::Tensor*> tensors) {
  if (!at::GradMode::is_enabled()) {
    return false;
  }
  for (const at::Tensor* t : tensors) {
    if (t->defined() && t->requires_grad()) {
      return true;
    }
  }
  return false;
}

at::Tensor if_needed(bool needed, const at::Tensor& gradient) {
  return needed ? gradient : at::Tensor();
}

class GridSampleDoubleBackward : public torch::autograd::Function<GridSampleDoubleBackward> {
 public:
  static variable_list forward(AutogradContext* ctx,
                               const std::optional<at::Tensor>& grad_grad_input,
                               const std::optional<at::Tensor>& grad_grad_grid,
                               const at::Tensor& grad_output, const at::Tensor& input,
                               const at::Tensor& grid,
                               const std::optional<at::Tensor>& tap_products,
                               int64_t interpolation, int64_t padding, bool align_corners,
                               bool smoothstep, std::array<bool, 3> output_mask) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    const auto [grad_grad_output, grad_input, grad_grid] = grid_sample_double_backward_op(
        grad_grad_input, grad_grad_grid, grad_output, input, grid, tap_products, interpolation,
        padding, align_corners, smoothstep, output_mask);
    return {grad_grad_output, grad_input, grad_grid};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    TORCH_CHECK(false,
                "torchsample's compiled grid_sample provides first and second derivatives only; "
                "for third and higher orders use the reference backend "
                "(TORCHSAMPLE_BACKEND=reference), which is differentiable to any order");
  }
};

class GridSampleBackward : public torch::autograd::Function<GridSampleBackward> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& grad_output,
                               const at::Tensor& input, const at::Tensor& grid,
                               int64_t interpolation, int64_t padding, bool align_corners,
                               bool smoothstep, std::array<bool, 3> output_mask) {
    at::Tensor grad_input, grad_grid, tap_products;
    {
      at::AutoDispatchBelowADInplaceOrView below_autograd;
      std::tie(grad_input, grad_grid, tap_products) =
          grid_sample_backward_op(grad_output, input, grid, interpolation, padding,
                                  align_corners, smoothstep, output_mask);
    }
    ctx->mark_non_differentiable({tap_products});
    ctx->save_for_backward({grad_output, input, grid, tap_products});
    Options{interpolation, padding, align_corners, smoothstep}.save(ctx);
    ctx->saved_data["computed_input"] = output_mask[0];
    ctx->saved_data["computed_grid"] = output_mask[1];
    return {grad_input, grad_grid, tap_products};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &grad_output = saved[0], &input = saved[1], &grid = saved[2];
    const Options options = Options::load(ctx);
    // Outputs the backward op left empty carry no gradient.
    std::optional<at::Tensor> grad_grad_input, grad_grad_grid;
    if (ctx->saved_data["computed_input"].toBool()) {
      grad_grad_input = grads[0];
    }
    if (ctx->saved_data["computed_grid"].toBool()) {
      grad_grad_grid = grads[1];
    }
    const auto mask = needed_gradients<3>(ctx, {&grad_output, &input, &grid});
    const auto [grad_grad_output, grad_input, grad_grid] = grid_sample_double_backward_op(
        grad_grad_input, grad_grad_grid, grad_output, input, grid, saved[3],
        options.interpolation, options.padding, options.align_corners, options.smoothstep, mask);
    return {if_needed(mask[0], grad_grad_output),
            if_needed(mask[1], grad_input),
            if_needed(mask[2], grad_grid),
            at::Tensor(),
            at::Tensor(),
            at::Tensor(),
            at::Tensor(),
            at::Tensor()};
  }
};

class GridSample : public torch::autograd::Function<GridSample> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& input, const at::Tensor& grid,
                            int64_t interpolation, int64_t padding, bool align_corners,
                            bool smoothstep) {
    at::Tensor output;
    {
      at::AutoDispatchBelowADInplaceOrView below_autograd;
      output = grid_sample_op(input, grid, interpolation, padding, align_corners, smoothstep);
    }
    ctx->save_for_backward({input, grid});
    Options{interpolation, padding, align_corners, smoothstep}.save(ctx);
    return output;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &input = saved[0], &grid = saved[1];
    const Options options = Options::load(ctx);
    const auto mask = needed_gradients<2>(ctx, {&input, &grid});
    // Under create_graph a double backward may follow, which can reuse the
    // tap products the grid gradient is made of instead of re-reading input.
    const bool keep_tap_products = mask[1] && at::GradMode::is_enabled();
    const auto [grad_input, grad_grid, tap_products] = grid_sample_backward_op(
        grads[0], input, grid, options.interpolation, options.padding, options.align_corners,
        options.smoothstep, {mask[0], mask[1], keep_tap_products});
    return {if_needed(mask[0], grad_input),
            if_needed(mask[1], grad_grid),
            at::Tensor(),
            at::Tensor(),
            at::Tensor(),
            at::Tensor()};
  }
};

class ChannelsLastCopy : public torch::autograd::Function<ChannelsLastCopy> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& input) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    return channels_last_copy_op(input);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) { return grads; }
};

at::Tensor grid_sample_autograd(const at::Tensor& input, const at::Tensor& grid,
                                int64_t interpolation, int64_t padding, bool align_corners,
                                bool smoothstep) {
  if (!records_graph({&input, &grid})) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    return grid_sample_op(input, grid, interpolation, padding, align_corners, smoothstep);
  }
  return GridSample::apply(input, grid, interpolation, padding, align_corners, smoothstep);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> grid_sample_backward_autograd(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& grid,
    int64_t interpolation, int64_t padding, bool align_corners, bool smoothstep,
    std::array<bool, 3> output_mask) {
  if (!records_graph({&grad_output, &input, &grid})) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    return grid_sample_backward_op(grad_output, input, grid, interpolation, padding,
                                   align_corners, smoothstep, output_mask);
  }
  const auto outputs = GridSampleBackward::apply(grad_output, input, grid, interpolation, padding,
                                                 align_corners, smoothstep, output_mask);
  return {outputs[0], outputs[1], outputs[2]};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> grid_sample_double_backward_autograd(
    const std::optional<at::Tensor>& grad_grad_input,
    const std::optional<at::Tensor>& grad_grad_grid, const at::Tensor& grad_output,
    const at::Tensor& input, const at::Tensor& grid, const std::optional<at::Tensor>& tap_products,
    int64_t interpolation, int64_t padding, bool align_corners, bool smoothstep,
    std::array<bool, 3> output_mask) {
  const at::Tensor none;
  if (!records_graph({grad_grad_input ? &*grad_grad_input : &none,
                      grad_grad_grid ? &*grad_grad_grid : &none, &grad_output, &input, &grid})) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    return grid_sample_double_backward_op(grad_grad_input, grad_grad_grid, grad_output, input,
                                          grid, tap_products, interpolation, padding,
                                          align_corners, smoothstep, output_mask);
  }
  const auto outputs = GridSampleDoubleBackward::apply(
      grad_grad_input, grad_grad_grid, grad_output, input, grid, tap_products, interpolation,
      padding, align_corners, smoothstep, output_mask);
  return {outputs[0], outputs[1], outputs[2]};
}

at::Tensor channels_last_copy_autograd(const at::Tensor& input) {
  if (!records_graph({&input})) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    return channels_last_copy_op(input);
  }
  return ChannelsLastCopy::apply(input);
}

}  // namespace

TORCH_LIBRARY_IMPL(torchsample, Autograd, m) {
  m.impl("grid_sample", &grid_sample_autograd);
  m.impl("grid_sample_backward", &grid_sample_backward_autograd);
  m.impl("grid_sample_double_backward", &grid_sample_double_backward_autograd);
  m.impl("channels_last_copy", &channels_last_copy_autograd);
}

}  // namespace torchsample
