// In-process jobs log at warn during tests unless asked otherwise, to keep test output readable.
process.env.LOG_LEVEL ??= 'warn';
