"""The built-in chat page (index.html, page.js, page.css, page.svg), served at /."""
