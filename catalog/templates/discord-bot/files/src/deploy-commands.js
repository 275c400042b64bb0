// Registers the slash commands with Discord. Run it once, and again after
// adding a command or changing a command's name, description or options:
//   npm run deploy-commands
import { REST, Routes } from 'discord.js';
import { commands } from './commands/index.js';
import { config } from './config.js';

const { token, clientId, guildId } = config({ needClientId: true });

const body = commands.map((command) => command.data.toJSON());
const rest = new REST().setToken(token);

// Commands registered for one server appear at once; global ones can take
// up to an hour to reach every server.
const route = guildId ? Routes.applicationGuildCommands(clientId, guildId) : Routes.applicationCommands(clientId);

try {
  const registered = await rest.put(route, { body });
  console.log(
    `Registered ${registered.length} command(s) ${guildId ? `in server ${guildId}` : 'globally'}: ` +
      registered.map((c) => `/${c.name}`).join(', '),
  );
} catch (error) {
  console.error('Registering the commands failed:', error);
  process.exit(1);
}
