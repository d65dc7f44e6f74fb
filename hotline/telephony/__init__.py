"""The backend's persistent side of Asterisk: one AMI connection per node (the
``telephony`` service) that keeps queue membership agreeing with seat states and
feeds AMI events to listeners (live call state)."""
