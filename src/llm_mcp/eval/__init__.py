"""Tool-call accuracy: matching predicted calls against gold calls, and the runner that makes
the predictions."""
