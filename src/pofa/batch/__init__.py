"""Many studies at once: imaging manifests, the per-patient pipeline, resumable Dask batches, study folders.

- :mod:`pofa.batch.manifest`: the imaging manifest format and its reader (findings with file, row, column).
- :mod:`pofa.batch.pipeline`: :func:`~pofa.batch.pipeline.process_patient`, one patient's scans -> lesion and
  failure rows (the single function both paths use).
- :mod:`pofa.batch.cache`: content keys (SHA-256 of inputs and settings) and per-patient done-records.
- :mod:`pofa.batch.job`: one patient's unit of work (reuse, run, publish atomically).
- :mod:`pofa.batch.runner`: :func:`~pofa.batch.runner.run_batch` on a dask.distributed cluster.
- :mod:`pofa.batch.study`: :func:`~pofa.batch.study.build_study_from_manifest` (no cluster) and the merge into
a
  study folder.
- :mod:`pofa.cli.batch`: the ``pofa batch`` and ``pofa build-study`` commands.

Importing this package is light; each module imports what it needs.
"""
