"""Answers a TF Serving REST request body with a SavedModel, TensorFlow only.

Usage: python -I serve_without_package.py SAVED_MODEL (REQUEST_JSON RESPONSE_JSON)...

`mmoeex_tf` and `keras` are made unimportable before anything else runs, as
TF Serving's C++ loader has neither. The request is
`{"signature_name": ..., "instances": [...]}`; like TF Serving's row format,
the instances are stacked into the signature's one input and the response is
`{"predictions": [{output name: value, ...}, ...]}`, one entry per instance.
"""

import sys

for blocked in ("mmoeex_tf", "keras"):
    sys.modules[blocked] = None  # a later import raises ImportError

import json  # noqa: E402

import tensorflow as tf  # noqa: E402


def main(saved_model, *files):
    for blocked in ("mmoeex_tf", "keras"):
        try:
            __import__(blocked)
        except ImportError:
            continue
        raise SystemExit(f"{blocked} is importable")
    loaded = tf.saved_model.load(saved_model)
    for request_file, response_file in zip(files[::2], files[1::2]):
        answer(loaded, request_file, response_file)


def answer(loaded, request_file, response_file):
    with open(request_file, encoding="utf-8") as file:
        request = json.load(file)
    signature = loaded.signatures[request["signature_name"]]
    (input_name,) = signature.structured_input_signature[1]
    outputs = signature(**{input_name: tf.constant(request["instances"], tf.float32)})
    columns = {name: value.numpy().tolist() for name, value in outputs.items()}
    rows = [dict(zip(columns, values)) for values in zip(*columns.values())]
    with open(response_file, "w", encoding="utf-8") as file:
        json.dump({"predictions": rows}, file)


if __name__ == "__main__":
    main(*sys.argv[1:])
