// Reads the configuration from the environment, and from .env when present.

try {
  process.loadEnvFile();
} catch {
  // No .env file: the variables come from the real environment.
}

export function config({ needClientId = false } = {}) {
  const values = {
    token: process.env.DISCORD_TOKEN?.trim() ?? '',
    clientId: process.env.DISCORD_CLIENT_ID?.trim() ?? '',
    guildId: process.env.DISCORD_GUILD_ID?.trim() || null,
  };
  const missing = [];
  if (!values.token) missing.push('DISCORD_TOKEN');
  if (needClientId && !values.clientId) missing.push('DISCORD_CLIENT_ID');
  if (missing.length) {
    console.error(`Missing ${missing.join(', ')}: copy .env.example to .env and fill it in.`);
    process.exit(1);
  }
  return values;
}
