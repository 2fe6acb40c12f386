"""Answers a TF Serving REST request of raw table rows, TensorFlow only.

Usage: python -I serve_table_rows.py SAVED_MODEL REQUEST_JSON RESPONSE_JSON

`mmoeex_tf` and `keras` are made unimportable first, as TF Serving's C++
loader has neither. The request is TF Serving's row format for named inputs,
`{"signature_name": ..., "instances": [{column: value, ...}, ...]}`; each
input gets its column of values (strings for string inputs, numbers or
`"NaN"` otherwise) and the response is `{"predictions": [{output: value,
...}, ...]}`, string outputs decoded as UTF-8.
"""

import sys

for blocked in ("mmoeex_tf", "keras"):
    sys.modules[blocked] = None  # a later import raises ImportError

import json  # noqa: E402

import tensorflow as tf  # noqa: E402


def main(saved_model, request_file, response_file):
    with open(request_file, encoding="utf-8") as file:
        request = json.load(file)
    signature = tf.saved_model.load(saved_model).signatures[request["signature_name"]]
    specs = signature.structured_input_signature[1]
    rows = request["instances"]
    inputs = {
        name: tf.constant(
            [
                row[name] if spec.dtype == tf.string else float(row[name])
                for row in rows
            ],
            spec.dtype,
        )
        for name, spec in specs.items()
    }
    outputs = {
        name: value.numpy().tolist() for name, value in signature(**inputs).items()
    }
    outputs = {
        name: [v.decode() if isinstance(v, bytes) else v for v in values]
        for name, values in outputs.items()
    }
    answer = [dict(zip(outputs, values)) for values in zip(*outputs.values())]
    with open(response_file, "w", encoding="utf-8") as file:
        json.dump({"predictions": answer}, file)


if __name__ == "__main__":
    main(*sys.argv[1:])
