"""Irrep analysis of trained runs: embeddings per l, NSPS, PHATE, utilization, figures, reports.

Entry points: ``irrepscope.analysis.report.analyze_run`` / ``compare_runs`` and
``irrepscope.analysis.demo.run_demo`` (imported lazily: this package pulls in torch and PHATE).
"""
