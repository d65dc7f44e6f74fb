"""Citizen calls: routing, the one writer of calls and seats, transfers, the journal."""
