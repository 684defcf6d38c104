"""Training: YAML configs, the Lightning module and data module, run directories and sweeps.

``config`` (RunConfig, load_config), ``module`` (EnergyModule, evaluate), ``datamodule``
(QM9DataModule, EpochSampler), ``callbacks`` (the per-epoch writer), ``run_records`` (the run
directory's files: commit order, checksummed checkpoints and their one reader, repair on
resume), ``run``
(train, train_from_config_file, load_trained_model, load_run_split, load_run_dataset, sweep),
``sweep`` (Table 1-style tables), ``schedules`` (lr schedules), ``ema`` (weight averaging),
``baseline`` (the composition baseline and element-reference fit). Imported lazily:
``irrepscope.train.config`` alone does not import Lightning.
"""
