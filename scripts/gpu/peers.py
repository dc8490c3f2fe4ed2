#!/usr/bin/env python3
"""The peer checks of scripts/gpu_check.sh: vitcpp against the real libraries that the GPU machine
has and Debian bookworm lacks. Prints one markdown row per check: | check | PASS/FAIL/SKIP | detail |

- timm: vit_tiny_patch16_224, deit_tiny_distilled_patch16_224 and swin_tiny_patch4_window7_224 with
  random weights, saved as safetensors, imported by `vit import --from timm`, exported as TorchScript:
  the logits equal timm's (fp32, <= 1e-4). Without timm (the CPU dry run) torchvision's swin_t and
  vit_b_16 take its place through `--from torchvision`.
- TensorBoard: the event files of a short detector run read by tensorboard's own EventAccumulator
  hold metrics.csv's values.
- ONNX: `vit export --format onnx` run by onnxruntime equals the TorchScript export.
- torchmetrics: MeanAveragePrecision of `vit predict`'s COCO results on the validation images equals
  `vit eval`'s mAP.
A peer that is not installed is a FAIL, or a SKIP with --allow-missing.
"""
import argparse
import csv
import importlib.util
import json
import pathlib
import subprocess
import sys

import torch

TOLERANCE = 1e-4


class Checks:
    def __init__(self, args):
        self.args = args
        self.work = pathlib.Path(args.work)
        self.work.mkdir(parents=True, exist_ok=True)

    def row(self, check, status, detail):
        detail = detail.replace("|", "/").replace("\n", " ")  # one markdown cell
        print(f"| {check} | {status} | {detail} |", flush=True)

    def missing(self, check, package):
        self.row(check, "SKIP" if self.args.allow_missing else "FAIL", f"{package} is not installed")

    def vit(self, *arguments):
        command = [self.args.vit, *map(str, arguments)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} exited {done.returncode}: {done.stderr.strip()[-400:]}")
        return done.stdout

    def run(self, check, function):
        try:
            function()
        except Exception as error:  # one failed check must not hide the others' results
            self.row(check, "FAIL", f"{type(error).__name__}: {str(error)[-400:]}")

    # --- imports -----------------------------------------------------------------------------
    def imports(self):
        if importlib.util.find_spec("timm"):
            import timm

            cases = [(name, "timm", lambda name=name: timm.create_model(name, pretrained=False))
                     for name in ("vit_tiny_patch16_224", "deit_tiny_distilled_patch16_224",
                                  "swin_tiny_patch4_window7_224")]
        elif self.args.allow_missing:
            import torchvision

            cases = [("swin_tiny_patch4_window7_224", "torchvision", torchvision.models.swin_t),
                     ("vit_base_patch16_224", "torchvision", torchvision.models.vit_b_16)]
        else:
            return self.missing("timm import", "timm")
        for preset, source, create in cases:
            self.run(f"{source} import: {preset}", lambda: self.import_one(preset, source, create))

    def import_one(self, preset, source, create):
        torch.manual_seed(0)
        model = create().eval()
        with torch.no_grad():  # no zero-initialised head or bias may hide a tensor that was left out
            for parameter in model.parameters():
                parameter.add_(0.02 * torch.randn_like(parameter))
        weights = self.work / f"{preset}.{source}"
        if importlib.util.find_spec("safetensors"):
            from safetensors.torch import save_file

            weights = weights.with_suffix(".safetensors")
            save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
        else:
            weights = weights.with_suffix(".pth")
            torch.save(model.state_dict(), weights)
        checkpoint, exported = self.work / f"{preset}.ckpt", self.work / f"{preset}.pt"
        self.vit("import", "--from", source, "--model", preset, weights, "--output", checkpoint)
        self.vit("export", "--checkpoint", checkpoint, "--output", exported)
        images = torch.randn(2, 3, 224, 224)
        with torch.no_grad():
            theirs = model(images)
            ours = torch.jit.load(str(exported)).eval()(images)
        difference = (ours - theirs).abs().max().item()
        status = "PASS" if difference <= TOLERANCE else "FAIL"
        self.row(f"{source} import: {preset}", status, f"largest logit difference {difference:.2e} (<= {TOLERANCE:g}), "
                 f"{weights.suffix} weights")

    # --- a short detector run, shared by the TensorBoard, ONNX and mAP checks --------------------
    def detector_run(self):
        if hasattr(self, "_run"):
            return self._run
        data, run = self.work / "shapes", self.work / "shapes_run"
        # On the GPU long enough for a mAP above zero (the shapes task's curve: 0.006 after 20 epochs
        # of 3,000 images, 0.06 after 15 of 6,000), so that the mAP check compares real numbers.
        train_images, val_images, epochs = (1000, 200, 30) if self.args.device != "cpu" else (64, 32, 2)
        self.vit("data", "synth-detection", "--output", data, "--train-images", train_images,
                 "--val-images", val_images)
        self.vit("train", "--config", data / "detection.yaml", "--device", self.args.device, "--output", run,
                 "--set", f"train.epochs={epochs}", "--set", "train.tensorboard=true")
        self._run = (data, run)
        return self._run

    def tensorboard(self):
        if importlib.util.find_spec("tensorboard"):
            reader, read = "tensorboard's EventAccumulator", self.scalars_by_tensorboard
        elif self.args.allow_missing:  # the dry run: the test suite's own protoc-generated reader
            reader, read = "tests/e2e/tensorboard/read_events.py (tensorboard not installed)", self.scalars_by_protoc
        else:
            return self.missing("TensorBoard events", "tensorboard")
        _, run = self.detector_run()
        scalars = read(run)
        rows = list(csv.DictReader(open(run / "metrics.csv")))
        compared, worst = 0, 0.0
        for tag, read_values in scalars.items():
            column = tag.replace("/", "_")
            if column not in rows[0]:
                continue
            logged = [float(row[column]) for row in rows]
            if len(read_values) != len(logged):
                raise RuntimeError(f"{tag}: {len(read_values)} events, {len(logged)} metrics.csv rows")
            worst = max([worst] + [abs(a - b) / max(1.0, abs(b)) for a, b in zip(read_values, logged)])
            compared += 1
        if compared == 0:
            raise RuntimeError(f"no scalar tag matches a metrics.csv column: {sorted(scalars)}")
        self.row("TensorBoard events", "PASS" if worst <= 1e-5 else "FAIL",
                 f"{compared} scalar tags read by {reader} equal metrics.csv (largest relative difference {worst:.1e})")

    @staticmethod
    def scalars_by_tensorboard(run):
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        events = EventAccumulator(str(run), size_guidance={"scalars": 0})
        events.Reload()
        return {tag: [event.value for event in events.Scalars(tag)] for tag in events.Tags()["scalars"]}

    @staticmethod
    def scalars_by_protoc(run):
        reader = pathlib.Path(__file__).resolve().parents[2] / "tests/e2e/tensorboard/read_events.py"
        printed = subprocess.run([sys.executable, str(reader), str(run)], capture_output=True, text=True, check=True)
        scalars = {}
        for tag, _, value, _ in json.loads(printed.stdout)["scalars"]:
            scalars.setdefault(tag, []).append(value)
        return scalars

    def onnx(self):
        if not importlib.util.find_spec("onnxruntime"):
            return self.missing("ONNX export", "onnxruntime")
        import onnxruntime

        _, run = self.detector_run()
        scripted, exported = self.work / "detector.pt", self.work / "detector.onnx"
        self.vit("export", "--checkpoint", run, "--output", scripted)
        self.vit("export", "--checkpoint", run, "--output", exported, "--format", "onnx")
        extra = {"config.json": ""}
        module = torch.jit.load(str(scripted), _extra_files=extra).eval()
        described = json.loads(extra["config.json"])
        images = torch.randn(3, described["in_chans"], described["image_size"], described["image_size"])
        with torch.no_grad():
            ours = module(images)
        session = onnxruntime.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
        theirs = session.run(None, {session.get_inputs()[0].name: images.numpy()})
        ours = ours if isinstance(ours, (tuple, list)) else (ours,)
        worst = max((torch.as_tensor(b) - a).abs().max().item() for a, b in zip(ours, theirs))
        self.row("ONNX export", "PASS" if worst <= TOLERANCE else "FAIL",
                 f"onnxruntime {onnxruntime.__version__} vs TorchScript, {len(theirs)} outputs, max difference {worst:.1e}")

    def mean_average_precision(self):
        """torchmetrics' MeanAveragePrecision (which needs pycocotools or faster_coco_eval behind it)
        of `vit predict`'s COCO results on the validation images against `vit eval`'s mAP; in the
        dry run without torchmetrics, pycocotools' COCOeval itself when it is installed."""
        if importlib.util.find_spec("torchmetrics"):
            peer, score = "torchmetrics' MeanAveragePrecision", self.map_by_torchmetrics
        elif self.args.allow_missing and importlib.util.find_spec("pycocotools"):
            peer, score = "pycocotools' COCOeval (torchmetrics not installed)", self.map_by_pycocotools
        else:
            return self.missing("detector mAP", "torchmetrics")
        data, run = self.detector_run()
        report = self.work / "eval.json"
        # In fp32, as predict runs: the config's bf16 evaluation would score other boxes.
        self.vit("eval", "--checkpoint", run, "--device", self.args.device, "--set", "train.amp=none",
                 "--json", report)
        ours = json.loads(report.read_text())["map"]
        annotations = json.loads((data / "val.json").read_text())
        results = json.loads(self.vit("predict", "--model", run, "--json", "--score-threshold", 0,
                                      "--device", self.args.device, data / "val"))
        ids = {pathlib.Path(image["file_name"]).name: image["id"] for image in annotations["images"]}
        for result in results:  # predict names images by path; COCO by id
            result["image_id"] = ids[pathlib.Path(result["image_id"]).name]
        theirs = score(annotations, results)
        status = "PASS" if abs(ours - theirs) <= TOLERANCE else "FAIL"
        self.row("detector mAP", status, f"vit eval {ours:.6f}, {peer} on vit predict's "
                 f"{len(results)} results {theirs:.6f}")

    @staticmethod
    def map_by_torchmetrics(annotations, results):
        from torchmetrics.detection import MeanAveragePrecision

        metric = MeanAveragePrecision(box_format="xywh", iou_type="bbox")
        for image in annotations["images"]:
            found = [r for r in results if r["image_id"] == image["id"]]
            truth = [a for a in annotations["annotations"] if a["image_id"] == image["id"]]
            metric.update(
                [{"boxes": torch.tensor([r["bbox"] for r in found], dtype=torch.float).reshape(-1, 4),
                  "scores": torch.tensor([r["score"] for r in found], dtype=torch.float),
                  "labels": torch.tensor([r["category_id"] for r in found], dtype=torch.long)}],
                [{"boxes": torch.tensor([a["bbox"] for a in truth], dtype=torch.float).reshape(-1, 4),
                  "labels": torch.tensor([a["category_id"] for a in truth], dtype=torch.long)}])
        return metric.compute()["map"].item()

    @staticmethod
    def map_by_pycocotools(annotations, results):
        import contextlib
        import io

        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        with contextlib.redirect_stdout(io.StringIO()):  # COCO's progress lines would break the table
            truth = COCO()
            truth.dataset = annotations
            truth.createIndex()
            evaluation = COCOeval(truth, truth.loadRes(results), "bbox")
            evaluation.evaluate()
            evaluation.accumulate()
            evaluation.summarize()
        return float(evaluation.stats[0])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vit", required=True, help="the vit binary")
    parser.add_argument("--work", required=True, help="a folder for weights, runs and exports")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--allow-missing", action="store_true", help="a missing peer is a SKIP, not a FAIL")
    checks = Checks(parser.parse_args())
    checks.imports()
    for name, check in (("TensorBoard events", checks.tensorboard), ("ONNX export", checks.onnx),
                        ("detector mAP", checks.mean_average_precision)):
        checks.run(name, check)
    return 0


if __name__ == "__main__":
    sys.exit(main())
