import { SlashCommandBuilder } from 'discord.js';

export const data = new SlashCommandBuilder()
  .setName('ping')
  .setDescription('Check that the bot is alive and how fast it answers');

export async function execute(interaction) {
  const response = await interaction.reply({ content: 'Pinging…', withResponse: true });
  const roundTrip = response.resource.message.createdTimestamp - interaction.createdTimestamp;
  const heartbeat = interaction.client.ws.ping;
  await interaction.editReply(
    `Pong! Round trip ${roundTrip} ms${heartbeat >= 0 ? `, gateway heartbeat ${heartbeat} ms` : ''}.`,
  );
}
