"""One process of a parallel `mmoeex_tf.integrations.tuning.search`.

Usage: python tuner_process.py CONFIG DIRECTORY MAX_TRIALS BASE_DIR

Keras Tuner's variables (`KERASTUNER_TUNER_ID`, `KERASTUNER_ORACLE_IP`,
`KERASTUNER_ORACLE_PORT`) give the role. The process prints one JSON line:
`ran`, the ids of the trials it ran; the chief adds `trials` (id -> status
of every trial of its oracle) and `export`, the exported model's folder.
"""

import json
import sys

import keras_tuner

from mmoeex_tf.integrations import tuning
from mmoeex_tf.runs.config import RunConfig
from mmoeex_tf.runs.config_files import read_config_file

ran = []
run_trial = keras_tuner.Tuner.run_trial


def recording_run_trial(self, trial, *args, **kwargs):
    ran.append(trial.trial_id)
    return run_trial(self, trial, *args, **kwargs)


keras_tuner.Tuner.run_trial = recording_run_trial

config_file, directory, max_trials, base_dir = sys.argv[1:]
config = RunConfig.from_dict(read_config_file(config_file))
tuner = tuning.search(
    config, max_trials=int(max_trials), directory=directory, verbose=0
)
summary = {"ran": ran}
if tuner.tuner_id == "chief":
    trials = tuner.oracle.trials
    summary["trials"] = {key: trial.status for key, trial in trials.items()}
    _, _, export = tuning.export_best(tuner, config, directory, base_dir=base_dir)
    summary["export"] = str(export)
print(json.dumps(summary))
