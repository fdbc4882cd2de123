"""The only code in berth that talks to Kubernetes."""
