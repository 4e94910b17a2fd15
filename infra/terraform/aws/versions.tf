# Portcullis on AWS: the broker on ECS Fargate behind an ALB with TLS, RDS PostgreSQL, secrets in Secrets Manager,
# one managed security group per target, and a scheduled tags-only sweep that needs neither broker nor database.
terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40, < 7.0"
    }
  }
}

provider "aws" {
  region = var.region
  default_tags {
    tags = var.tags
  }
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account   = data.aws_caller_identity.current.account_id
  partition = data.aws_partition.current.partition
  # Every security group the broker may open carries this tag; the IAM policies below allow changes to no other.
  gate_tag = { (var.gate_tag_key) = var.name }
}
