"""Operations behind the admin pages, their JSON API and the CLI."""
