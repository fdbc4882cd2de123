"""Out-of-tree plugins the e2e tests install through the `berth.plugins` entry-point group."""
