output "name" {
  description = "Name of this stack."
  value       = var.name
}

output "tags" {
  description = "Tags applied to every resource."
  value       = local.tags
}
