# tflint configuration: https://github.com/terraform-linters/tflint
#   tflint --init && tflint --recursive
# The bundled Terraform ruleset with its recommended preset (unused
# declarations, missing types and descriptions, deprecated syntax, ...).
config {
  call_module_type = "local"
}

plugin "terraform" {
  enabled = true
  preset  = "recommended"
}
