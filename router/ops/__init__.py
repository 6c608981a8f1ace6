"""Operations: the data behind the admin pages, their JSON API (overview, event debugger,
identity quality) and the CLI."""
