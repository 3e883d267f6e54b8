terraform {
  required_version = ">= 1.6, < 2.0"

  # No provider is declared yet, so `terraform init -backend=false` and
  # `terraform validate` work offline out of the box. To manage real
  # infrastructure, declare your provider here and configure it below, e.g.:
  #
  # required_providers {
  #   aws = {
  #     source  = "hashicorp/aws"
  #     version = "~> 6.0"
  #   }
  # }
  #
  # Keep remote state in a backend, configured per environment with
  # `terraform init -backend-config=backend.hcl` (never commit credentials):
  #
  # backend "s3" {}
}

# provider "aws" {
#   region = var.region
#   # Credentials come from the environment (AWS_PROFILE, SSO, OIDC in CI),
#   # never from this file.
#   default_tags {
#     tags = local.tags
#   }
# }
