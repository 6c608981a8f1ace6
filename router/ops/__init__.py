"""Operations: the data behind the admin pages and their JSON API (overview, event debugger,
identity quality)."""
