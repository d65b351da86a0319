"""Model rules from the deployment guides (LBC2xx-LBC6xx). Filled by the rules work."""
