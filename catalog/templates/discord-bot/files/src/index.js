import { Client, Collection, Events, GatewayIntentBits, MessageFlags } from 'discord.js';
import { commands } from './commands/index.js';
import { config } from './config.js';

const { token } = config();

// Slash commands need only the Guilds intent. Add intents (and enable the
// privileged ones in the Developer Portal) when the bot needs more events.
const client = new Client({ intents: [GatewayIntentBits.Guilds] });

client.commands = new Collection(commands.map((command) => [command.data.name, command]));

client.once(Events.ClientReady, (ready) => {
  console.log(`Logged in as ${ready.user.tag}, serving ${ready.guilds.cache.size} server(s).`);
});

client.on(Events.InteractionCreate, async (interaction) => {
  if (!interaction.isChatInputCommand()) return;
  const command = client.commands.get(interaction.commandName);
  if (!command) {
    console.warn(`Unknown command /${interaction.commandName}: run npm run deploy-commands.`);
    return;
  }
  try {
    await command.execute(interaction);
  } catch (error) {
    console.error(`/${interaction.commandName} failed:`, error);
    const reply = { content: 'Something went wrong running that command.', flags: MessageFlags.Ephemeral };
    try {
      if (interaction.replied || interaction.deferred) await interaction.followUp(reply);
      else await interaction.reply(reply);
    } catch (replyError) {
      console.error('Could not report the error to the user:', replyError);
    }
  }
});

client.on(Events.Error, (error) => console.error('Client error:', error));

async function shutdown(signal) {
  console.log(`${signal} received, logging out.`);
  await client.destroy();
  process.exit(0);
}
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);

await client.login(token);
