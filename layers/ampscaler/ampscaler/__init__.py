"""ampscaler: serverless Kubernetes HPA semantics for EKS, driven by Amazon Managed Service for Prometheus."""

__version__ = "0.1.0"
