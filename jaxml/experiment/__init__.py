"""The runner of jaxml: configs with validation, modes, the registry of experiments, the CLI,
results and claims, the report, and sweeps over grids x seeds."""

from jaxml.experiment.config import ConfigError, ExperimentConfig, Mode, apply_overrides, config_to_dict, param
from jaxml.experiment.figures import new_figure
from jaxml.experiment.registry import UnknownExperimentError, list_experiments, load_experiment
from jaxml.experiment.results import Claim, Result, RunContext, context, log
from jaxml.experiment.runner import OutputDirError, run_experiment
from jaxml.experiment.sweep import grid_points, sweep
from jaxml.experiment.tasks import TaskPool


def run_script(script_file: str) -> None:
    """``if __name__ == "__main__": run_script(__file__)``: the CLI of ``jaxml run`` for one script."""
    from jaxml.experiment.cli import run_script as _rs

    _rs(script_file)


__all__ = [
    "ConfigError", "ExperimentConfig", "Mode", "apply_overrides", "config_to_dict", "param",
    "new_figure", "UnknownExperimentError", "list_experiments", "load_experiment",
    "Claim", "Result", "RunContext", "context", "log", "OutputDirError", "run_experiment",
    "grid_points", "sweep", "run_script", "TaskPool",
]
