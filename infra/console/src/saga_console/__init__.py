"""The saga console: watches the saga from the outside and shows it live in a browser."""
