#include "app/commands/cli.h"

#include "app/commands/attention_command.h"
#include "app/commands/bench_command.h"
#include "app/commands/config_command.h"
#include "app/commands/data_command.h"
#include "app/commands/eval_command.h"
#include "app/commands/export_command.h"
#include "app/commands/import_command.h"
#include "app/commands/info_command.h"
#include "app/commands/mae_show_command.h"
#include "app/commands/manual_command.h"
#include "app/commands/predict_command.h"
#include "app/commands/train_command.h"
#include "app/config/yaml_section.h"
#include "app/errors.h"
#include "app/runtime/blas_kernels.h"
#include "app/runtime/version.h"
#include "data/errors.h"

#include <c10/util/Exception.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <csignal>
#include <iostream>
#include <new>

namespace vit::app {
namespace {

void set_up_logging() {
  // run_cli may run more than once in a process (tests do): the logger is made once.
  if (spdlog::get("vit") != nullptr) return;
  auto logger = spdlog::stderr_color_mt("vit");
  logger->set_pattern("[%H:%M:%S] %^%l%$ %v");
  spdlog::set_default_logger(logger);
}

int report(const std::string& message, int exit_code) {
  std::cerr << "error: " << message << "\n";
  return exit_code;
}

}  // namespace

int run_cli(int argc, char** argv) {
  // Past a file-size limit (ulimit -f), writes then fail with EFBIG, which the atomic writers
  // report and clean up after, instead of the signal killing the process mid-save.
  std::signal(SIGXFSZ, SIG_IGN);
  // Output into a closed pipe (`vit train | head`) fails that write, not the process and its run.
  std::signal(SIGPIPE, SIG_IGN);
  set_up_logging();
  CLI::App app{"vitcpp: train, evaluate and export Vision Transformers", "vit"};
  app.require_subcommand(1);
  app.set_version_flag(
      "--version", [] { return version_text(); },
      "Print the versions of vitcpp and LibTorch, whether CUDA is available, the BLAS in use, its kernels "
      "and the kernels of bf16 products");
  int exit_code = kExitSuccess;
  add_train_command(app, exit_code);
  add_eval_command(app, exit_code);
  add_export_command(app, exit_code);
  add_predict_command(app, exit_code);
  add_info_command(app, exit_code);
  add_config_command(app, exit_code);
  add_import_command(app, exit_code);
  add_data_command(app, exit_code);
  add_bench_command(app, exit_code);
  add_attention_command(app, exit_code);
  add_mae_show_command(app, exit_code);
  add_manual_commands(app, exit_code);
  // CLI11 answers an unknown first word with "A subcommand is required"; name it instead.
  if (argc > 1 && argv[1][0] != '-') {
    std::vector<std::string> commands;
    for (const auto* command : app.get_subcommands({})) commands.push_back(command->get_name());
    if (std::find(commands.begin(), commands.end(), argv[1]) == commands.end()) {
      const auto closest = closest_name(argv[1], commands);
      std::string listed;
      for (const auto& name : commands) listed += (listed.empty() ? "" : ", ") + name;
      return report(std::string("unknown command '") + argv[1] + "'" +
                        (closest.empty() ? "" : " (did you mean '" + closest + "'?)") + "; commands: " + listed,
                    kExitUsageError);
    }
  }
  try {
    choose_bf16_products();
    app.parse(argc, argv);
    return exit_code;
  } catch (const CLI::ParseError& error) {
    const int cli_code = app.exit(error);
    return cli_code == 0 ? kExitSuccess : kExitUsageError;
  } catch (const ConfigError& error) {
    return report(error.what(), kExitUsageError);
  } catch (const data::DataError& error) {
    return report(error.what(), kExitRuntimeError);
  } catch (const FileError& error) {
    return report(error.what(), kExitRuntimeError);
  } catch (const c10::Error& error) {
    // LibTorch's what() carries a C++ stack trace that means nothing to a user (shown with -v).
    spdlog::debug("{}", error.what());
    return report(error.what_without_backtrace(), kExitRuntimeError);
  } catch (const std::bad_alloc&) {
    return report(std::string("out of memory in `vit ") + (argc > 1 ? argv[1] : "") +
                      "`: lower train.batch_size (or data.workers, data.prefetch), or free memory",
                  kExitRuntimeError);
  } catch (const std::exception& error) {
    return report(error.what(), kExitRuntimeError);
  }
}

}  // namespace vit::app
