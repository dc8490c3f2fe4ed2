#!/usr/bin/python3
"""Reads every TensorBoard event file of a run directory the way TensorBoard does, with message
classes that protoc generates from event.proto / summary.proto (python3-protobuf): every record's
length and payload CRC-32C (masked, as TFRecord stores them) is checked, every payload must parse
as an Event. Prints JSON: {"files": [{"name", "records", "file_version"}], "scalars": [[tag, step,
value, file index]]; files in the order
their first events were written, "images": [[tag, step, height, width, colorspace, png bytes, png ok]]}.
Exit 1 with a message on the first bad record.

usage: read_events.py RUN_DIR
"""
import importlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile


def crc32c(data):
    # Bitwise CRC-32C (Castagnoli, reflected 0x82F63B78), independent of vitcpp's table.
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked(crc):
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def compiled_messages():
    here = os.path.dirname(os.path.abspath(__file__))
    out = tempfile.mkdtemp(prefix="vit_proto_")
    try:
        subprocess.run(["protoc", f"--proto_path={here}", f"--python_out={out}", "event.proto", "summary.proto"],
                       check=True)
        sys.path.insert(0, out)
        # Imported (with summary_pb2) before the folder goes: each run left one behind in /tmp.
        return importlib.import_module("event_pb2")
    finally:
        if out in sys.path:
            sys.path.remove(out)
        shutil.rmtree(out, ignore_errors=True)


def records(path):
    with open(path, "rb") as f:
        data = f.read()
    at = 0
    while at < len(data):
        if len(data) - at < 12:
            raise ValueError(f"{path}: {len(data) - at} stray bytes at offset {at}")
        (length,) = struct.unpack_from("<Q", data, at)
        (length_crc,) = struct.unpack_from("<I", data, at + 8)
        if masked(crc32c(data[at:at + 8])) != length_crc:
            raise ValueError(f"{path}: bad length CRC at offset {at}")
        payload = data[at + 12:at + 12 + length]
        if len(payload) != length or len(data) < at + 16 + length:
            raise ValueError(f"{path}: truncated record at offset {at}")
        (payload_crc,) = struct.unpack_from("<I", data, at + 12 + length)
        if masked(crc32c(payload)) != payload_crc:
            raise ValueError(f"{path}: bad payload CRC at offset {at}")
        yield payload
        at += 16 + length


def main():
    run_dir = sys.argv[1]
    event_pb2 = compiled_messages()
    report = {"files": [], "scalars": [], "images": []}
    files = []
    for name in os.listdir(run_dir):
        if "tfevents" not in name:
            continue
        events = []
        for payload in records(os.path.join(run_dir, name)):
            event = event_pb2.Event()
            event.ParseFromString(payload)
            if event.SerializeToString() != payload:
                raise ValueError(f"{name}: record {len(events)} does not re-encode to the same bytes")
            events.append(event)
        if not events:
            raise ValueError(f"{name}: no events")
        files.append((events[0].wall_time, name, events))
    # In the order they were started, as TensorBoard reads them.
    for index, (_, name, events) in enumerate(sorted(files)):
        entry = {"name": name, "records": len(events), "file_version": None}
        for event in events:
            if event.HasField("file_version"):
                entry["file_version"] = event.file_version
            for value in event.summary.value:
                if value.HasField("simple_value"):
                    report["scalars"].append([value.tag, event.step, value.simple_value, index])
                elif value.HasField("image"):
                    image = value.image
                    png = image.encoded_image_string
                    report["images"].append([value.tag, event.step, image.height, image.width, image.colorspace,
                                             len(png), png.startswith(b"\x89PNG\r\n\x1a\n")])
        report["files"].append(entry)
    print(json.dumps(report))


if __name__ == "__main__":
    try:
        main()
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
