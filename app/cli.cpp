#include "app/cli.h"

#include "app/attention_command.h"
#include "app/bench_command.h"
#include "app/data_command.h"
#include "app/errors.h"
#include "app/eval_command.h"
#include "app/export_command.h"
#include "app/import_command.h"
#include "app/info_command.h"
#include "app/predict_command.h"
#include "app/train_command.h"
#include "data/errors.h"

#include <c10/util/Exception.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <csignal>
#include <iostream>

namespace vit::app {
namespace {

void set_up_logging() {
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
  set_up_logging();
  CLI::App app{"vitcpp: train, evaluate and export Vision Transformers", "vit"};
  app.require_subcommand(1);
  int exit_code = kExitSuccess;
  add_train_command(app, exit_code);
  add_eval_command(app, exit_code);
  add_export_command(app, exit_code);
  add_predict_command(app, exit_code);
  add_info_command(app, exit_code);
  add_import_command(app, exit_code);
  add_data_command(app, exit_code);
  add_bench_command(app, exit_code);
  add_attention_command(app, exit_code);
  try {
    app.parse(argc, argv);
    return exit_code;
  } catch (const CLI::ParseError& error) {
    const int cli_code = app.exit(error);
    return cli_code == 0 ? kExitSuccess : kExitUsageError;
  } catch (const ConfigError& error) {
    return report(error.what(), kExitUsageError);
  } catch (const data::DataError& error) {
    return report(error.what(), kExitRuntimeError);
  } catch (const c10::Error& error) {
    // LibTorch's what() carries a C++ stack trace that means nothing to a user (shown with -v).
    spdlog::debug("{}", error.what());
    return report(error.what_without_backtrace(), kExitRuntimeError);
  } catch (const std::exception& error) {
    return report(error.what(), kExitRuntimeError);
  }
}

}  // namespace vit::app
