"""Supervisor reports: call metrics from the shared ``calls`` table and ticket/SLA
metrics, per line, unit, agent and period, as JSON, CSV and XLSX."""
