// `normnet train`: trains the default Fashion-MNIST CNN (zoo::fashion_cnn) or a model from a JSON
// config, with a checkpoint per epoch, then reports test loss and accuracy on stdout and saves
// the model. --resume continues from a checkpoint at the epoch it records.
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "commands.h"
#include "model_files.h"
#include "normnet/callbacks.h"
#include "normnet/datasets.h"
#include "normnet/error.h"
#include "normnet/initializers.h"
#include "normnet/ops/conv.h"
#include "normnet/threading.h"
#include "normnet/zoo.h"

namespace normnet::cli {
namespace {

struct TrainArgs {
  std::string config, data, output = "fashion_cnn.safetensors", checkpoint, plot, csv, resume, schedule = "cosine";
  std::string conv2d_algorithm = "direct";
  int epochs = 3, threads = 0;
  int64_t batch_size = zoo::kFashionCnnBatchSize, limit = 0, test_limit = 0;
  double learning_rate = 1e-3;
  uint64_t seed = 1;
  bool no_checkpoint = false;
};

// "out.safetensors" -> "out.epoch{epoch}.safetensors" (ModelCheckpoint fills in {epoch}).
std::string default_checkpoint_pattern(const std::string& output) {
  const std::string ext = ".safetensors";
  const bool has_ext = output.size() > ext.size() && output.compare(output.size() - ext.size(), ext.size(), ext) == 0;
  return (has_ext ? output.substr(0, output.size() - ext.size()) : output) + ".epoch{epoch}" + ext;
}

// The epochs a checkpoint has completed, from its "normnet.epoch" metadata.
int completed_epochs(const std::string& path) {
  const auto metadata = saved_metadata(path);
  const auto it = metadata.find("normnet.epoch");
  if (it == metadata.end())
    throw ValueError(detail::str("--resume '", path, "': no \"normnet.epoch\" in its metadata (not a checkpoint of normnet train)"));
  try {
    std::size_t used = 0;
    const int epochs = std::stoi(it->second, &used);
    if (used == it->second.size() && epochs >= 0) return epochs;
  } catch (const std::exception&) {
  }
  throw ValueError(detail::str("--resume '", path, "': \"normnet.epoch\" is '", it->second, "', not an epoch count"));
}

// Files are written after hours of training: a missing directory is reported before it starts.
void check_directory_of(const std::string& path, const std::string& option) {
  if (path.empty()) return;
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (!dir.empty() && !std::filesystem::is_directory(dir))
    throw IoError(detail::str("train ", option, ": directory '", dir.string(), "' of '", path, "' does not exist"));
}

void validate(const TrainArgs& a) {
  if (a.epochs < 1) throw ValueError(detail::str("train --epochs: expected at least 1, got ", a.epochs));
  if (a.batch_size < 1) throw ValueError(detail::str("train --batch-size: expected at least 1, got ", a.batch_size));
  if (!(a.learning_rate > 0.0) || a.learning_rate > 10.0)
    throw ValueError(detail::str("train --learning-rate: expected a value in (0, 10], got ", a.learning_rate));
  if (a.schedule != "cosine" && a.schedule != "constant")
    throw ValueError(detail::str("train --schedule: expected 'cosine' or 'constant', got '", a.schedule, "'"));
  (void)conv2d_algorithm_named(a.conv2d_algorithm, "train");
  if (a.output.empty()) throw ValueError("train --output: expected a file name, got an empty string");
  check_directory_of(a.output, "--output");
  check_directory_of(a.checkpoint, "--checkpoint");
  check_directory_of(a.plot, "--plot");
  check_directory_of(a.csv, "--csv");
}

// Steps per epoch of a run over `train_samples` images.
int64_t batches_per_epoch(const TrainArgs& a, int64_t train_samples) { return (train_samples + a.batch_size - 1) / a.batch_size; }

// A cosine schedule is planned for a number of steps: resuming with another --epochs (or batch
// size, or --limit) would run past its end at a learning rate of 0, or stop before it decays.
void check_resumed_schedule(const Model& model, const TrainArgs& a, int64_t train_samples) {
  const Config config = model.optimizer()->get_config();  // {"class_name": ..., "config": {"learning_rate": ...}}
  const Config lr = config.value("config", Config::object()).value("learning_rate", Config());
  if (!lr.is_object() || lr.value("class_name", "") != "CosineDecay") return;
  const int64_t planned = lr["config"].value("decay_steps", int64_t{0});
  const int64_t steps = batches_per_epoch(a, train_samples);
  if (planned != static_cast<int64_t>(a.epochs) * steps)
    throw ValueError(detail::str("--resume '", a.resume, "': its cosine learning-rate schedule was planned for ", planned,
                                 " steps (", static_cast<double>(planned) / static_cast<double>(steps), " epochs of ", steps,
                                 " batches); this run asks for ", a.epochs,
                                 " epochs: pass the original --epochs, --batch-size and --limit"));
}

// The model to train and the epochs it has already done.
std::pair<Model, int> starting_model(const TrainArgs& a, int64_t train_samples) {
  if (!a.resume.empty()) {
    const int done = completed_epochs(a.resume);
    if (done >= a.epochs)
      throw ValueError(detail::str("--resume '", a.resume, "': the checkpoint has already completed ", done,
                                   " epochs; ask for more with --epochs (got ", a.epochs, ")"));
    Model model = load_compiled_model(a.resume);
    check_resumed_schedule(model, a, train_samples);
    return {model, done};
  }
  set_random_seed(a.seed);
  Model model = a.config.empty() ? zoo::fashion_cnn() : model_from_config_file(a.config);
  const int64_t batches = batches_per_epoch(a, train_samples);
  model.compile(zoo::fashion_cnn_compile_options(
      a.schedule == "cosine" ? zoo::fashion_cnn_schedule(a.learning_rate, a.epochs, batches) : a.learning_rate));
  return {model, 0};
}

void run_train(const TrainArgs& a) {
  validate(a);
  apply_threads(a.threads);
  ops::set_conv2d_algorithm(conv2d_algorithm_named(a.conv2d_algorithm, "train"));
  const datasets::Dataset data = datasets::fashion_mnist(a.data);
  const datasets::Split train = first_samples(data.train, a.limit, "train --limit");
  const datasets::Split test = first_samples(data.test, a.test_limit, "train --test-limit");
  auto [model, done] = starting_model(a, train.x.shape()[0]);

  FitOptions fit = FitOptions().epochs(a.epochs).initial_epoch(done).batch_size(a.batch_size).seed(a.seed).verbose(1);
  if (!a.no_checkpoint)
    fit.callback(callbacks::ModelCheckpoint(a.checkpoint.empty() ? default_checkpoint_pattern(a.output) : a.checkpoint));
  if (!a.csv.empty()) fit.callback(callbacks::CSVLogger(a.csv, /*append=*/done > 0));
  std::cerr << "Training '" << model.name() << "' (" << model.count_params() << " parameters) on "
            << train.x.shape()[0] << " Fashion-MNIST images: epochs " << done + 1 << " to " << a.epochs << ", batch "
            << a.batch_size << ", seed " << a.seed << ", threads " << get_num_threads()
            << (a.conv2d_algorithm == "winograd" ? ", Winograd convolutions" : "") << "\n";
  const History history = model.fit(train.x, train.y, fit);

  model.save(a.output, SaveOptions().metadata("normnet.epoch", std::to_string(done + static_cast<int>(history.epoch.size()))));
  if (!a.plot.empty()) history.plot_svg(a.plot, "normnet train: " + model.name());
  const auto result = model.evaluate(test.x, test.y, 256);
  std::cout << "test loss: " << fixed(result.at("loss")) << "\n"
            << "test accuracy: " << fixed(result.at("accuracy")) << "\n"
            << "saved: " << a.output << "\n";
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  CLI::App* cmd = app.add_subcommand(
      "train",
      "Train the default Fashion-MNIST CNN (or --config MODEL.json) with Adam and sparse cross-entropy; "
      "progress on stderr, test loss and accuracy on stdout; saves the model and a checkpoint per epoch");
  CLI::Option* config = cmd->add_option("--config", a->config, "Keras-style JSON model config (see normnet summary --json)");
  cmd->add_option("--data", a->data, "directory of the Fashion-MNIST IDX files (default: $NORMNET_DATA, else Debian's dataset-fashion-mnist)");
  cmd->add_option("--epochs", a->epochs, "total epochs (with --resume: including those done)")->capture_default_str();
  cmd->add_option("--batch-size", a->batch_size, "samples per step")->capture_default_str();
  CLI::Option* lr = cmd->add_option("--learning-rate", a->learning_rate, "Adam's (initial) learning rate")->capture_default_str();
  CLI::Option* schedule =
      cmd->add_option("--schedule", a->schedule,
                      "learning rate over the run: 'cosine' (decays to 0 by the last step of --epochs) or 'constant'")
          ->capture_default_str();
  cmd->add_option("--seed", a->seed, "seed of the weights, the shuffle and dropout (same seed and threads: same result)")
      ->capture_default_str();
  cmd->add_option("--threads", a->threads, "threads (0: $NORMNET_NUM_THREADS, else every core)")->capture_default_str();
  cmd->add_option("--conv2d-algorithm", a->conv2d_algorithm, kConv2dAlgorithmHelp)->capture_default_str();
  cmd->add_option("--output,-o", a->output, "the trained model (.safetensors)")->capture_default_str();
  CLI::Option* checkpoint = cmd->add_option(
      "--checkpoint", a->checkpoint, "checkpoint path per epoch, {epoch} = 1, 2, ... (default: OUTPUT as NAME.epoch{epoch}.safetensors)");
  cmd->add_flag("--no-checkpoint", a->no_checkpoint, "write no checkpoints")->excludes(checkpoint);
  cmd->add_option("--plot", a->plot, "training curves as an SVG file");
  cmd->add_option("--csv", a->csv, "per-epoch logs as a CSV file (appended to with --resume)");
  cmd->add_option("--limit", a->limit, "train on the first N training images only (0: all 60000)")->capture_default_str();
  cmd->add_option("--test-limit", a->test_limit, "report the accuracy on the first N test images only (0: all 10000)")
      ->capture_default_str();
  cmd->add_option("--resume", a->resume,
                  "continue from a checkpoint (model and optimizer state) after the epochs it completed; "
                  "pass the same --seed, --batch-size, --limit and --data to continue the original run exactly")
      ->excludes(config)
      ->excludes(lr)
      ->excludes(schedule);
  cmd->callback([a] { run_train(*a); });
}

}  // namespace normnet::cli
