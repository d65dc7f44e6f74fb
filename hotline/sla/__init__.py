"""SLA: policies, clocks with deadlines computed from policy + calendar + history,
and the scan that fires warnings, overdue marks and escalations exactly once."""
