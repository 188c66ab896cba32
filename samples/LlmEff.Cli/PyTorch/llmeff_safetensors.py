"""Reads and writes safetensors files exactly as LlmEff.Checkpoints.SafeTensors does (no `safetensors` package needed).

The format: an 8-byte little-endian header length, a UTF-8 JSON header naming every tensor's dtype, shape and byte
range (plus a `__metadata__` object of strings), then the raw row-major little-endian data. Like the C# writer,
`save` pads the header with spaces to a multiple of 8 bytes, packs the data largest elements first (then by name),
lists header entries by name, records a SHA-256 of the data section under `sha256`, and replaces the file only once
the new one is complete on disk. `load` checks the layout and that checksum.
"""

import hashlib
import json
import os
import struct
import sys
import tempfile

import torch

DTYPES = {
    "BOOL": torch.bool, "U8": torch.uint8, "I8": torch.int8, "I16": torch.int16, "I32": torch.int32,
    "I64": torch.int64, "F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32, "F64": torch.float64,
}
NAMES = {dtype: name for name, dtype in DTYPES.items()}
CHECKSUM_KEY = "sha256"
MAX_HEADER_BYTES = 100_000_000

if sys.byteorder != "little":
    raise RuntimeError("safetensors data are little-endian and this machine is not; byte swapping is not implemented.")


def _element_size(dtype):
    return torch.empty((), dtype=dtype).element_size()


def read_header(path):
    """(tensor entries by name, metadata) of a safetensors file, without reading the data."""
    with open(path, "rb") as file:
        header, metadata, _ = _read_header(file, path, os.path.getsize(path))
    return header, metadata


def _read_header(file, path, file_size):
    prefix = file.read(8)
    if len(prefix) < 8:
        raise ValueError(f"{path} is not a safetensors file (it is {file_size} bytes long).")
    (length,) = struct.unpack("<Q", prefix)
    if length > file_size - 8 or length > MAX_HEADER_BYTES:
        raise ValueError(f"{path} is not a safetensors file (header length {length} does not fit its {file_size} bytes).")
    try:
        header = json.loads(file.read(length).decode("utf-8"))
    except ValueError as error:
        raise ValueError(f"{path} is not a safetensors file (its header is not valid JSON: {error}).") from error
    if not isinstance(header, dict):
        raise ValueError(f"{path} is not a safetensors file (its header is not a JSON object).")
    metadata = header.pop("__metadata__", None) or {}
    return header, metadata, 8 + length


def load(path):
    """(tensors by name on the CPU, metadata) of a safetensors file; the SHA-256 is checked when the file records one."""
    size = os.path.getsize(path)
    with open(path, "rb") as file:
        header, metadata, data_start = _read_header(file, path, size)
        data = file.read()
    entries = sorted(header.items(), key=lambda item: item[1]["data_offsets"][0])
    covered = 0
    for name, entry in entries:
        begin, end = entry["data_offsets"]
        if entry["dtype"] not in DTYPES:
            raise ValueError(f"{path} has tensor '{name}' of dtype {entry['dtype']}, which this reader does not know.")
        count = 1
        for dimension in entry["shape"]:
            count *= dimension
        if begin != covered or end - begin != count * _element_size(DTYPES[entry["dtype"]]):
            raise ValueError(f"{path} gives tensor '{name}' data_offsets [{begin}, {end}] that do not fit its layout.")
        covered = end
    if covered != len(data):
        raise ValueError(f"{path} has {len(data)} bytes of data where its header describes {covered} (truncated or padded).")
    if CHECKSUM_KEY in metadata:
        digest = hashlib.sha256(data).hexdigest()
        if digest != metadata[CHECKSUM_KEY].lower():
            raise ValueError(f"{path} has a checksum mismatch: the data was modified or damaged "
                             f"(SHA-256 in the header {metadata[CHECKSUM_KEY][:12]}..., of the data {digest[:12]}...).")
    tensors = {}
    for name, entry in entries:
        begin, end = entry["data_offsets"]
        dtype = DTYPES[entry["dtype"]]
        if end == begin:
            tensors[name] = torch.empty(entry["shape"], dtype=dtype)
        else:
            tensors[name] = torch.frombuffer(bytearray(data[begin:end]), dtype=dtype).reshape(entry["shape"]).clone()
    return tensors, metadata


def save(path, tensors, metadata=None):
    """Writes {name: tensor} and {key: string} metadata to path, atomically (temporary file, fsync, rename)."""
    metadata = dict(metadata or {})
    if CHECKSUM_KEY in metadata:
        raise ValueError(f"The metadata key '{CHECKSUM_KEY}' is reserved: save computes it.")
    for key, value in metadata.items():
        if not isinstance(value, str):
            raise ValueError(f"The metadata value of '{key}' is {type(value).__name__}; the format stores strings only.")
    planned = []
    for name, tensor in tensors.items():
        if name == "__metadata__":
            raise ValueError("'__metadata__' is the format's metadata key and cannot name a tensor.")
        if tensor.dtype not in NAMES:
            raise ValueError(f"Tensor '{name}' is {tensor.dtype}, which safetensors cannot store here.")
        planned.append((name, tensor.detach().cpu().contiguous()))
    # Largest elements first, then by name: every tensor starts at a multiple of its own element size.
    planned.sort(key=lambda item: (-item[1].element_size(), item[0]))
    entries, chunks, offset = {}, [], 0
    digest = hashlib.sha256()
    for name, tensor in planned:
        raw = tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() > 0 else b""
        entries[name] = {"dtype": NAMES[tensor.dtype], "shape": list(tensor.shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        digest.update(raw)
        chunks.append(raw)
    metadata[CHECKSUM_KEY] = digest.hexdigest()
    header = {"__metadata__": dict(sorted(metadata.items()))}
    for name in sorted(entries):
        header[name] = entries[name]
    encoded = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    encoded += b" " * (-len(encoded) % 8)
    folder = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(struct.pack("<Q", len(encoded)))
            file.write(encoded)
            for raw in chunks:
                file.write(raw)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
