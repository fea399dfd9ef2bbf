# terraform -chdir=terraform/release apply -var-file=../examples/release.tfvars
region            = "eu-west-1"
github_repository = "example-org/ai-gateway"
state_bucket_arn  = "arn:aws:s3:::example-org-terraform-state"
