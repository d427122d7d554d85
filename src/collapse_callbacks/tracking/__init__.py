"""Experiment-tracking integrations: what a gate report looks like in a tracker."""
