-- The demo's users table: full_name was just added and is mostly empty.
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    email TEXT NOT NULL,
    full_name TEXT
);
