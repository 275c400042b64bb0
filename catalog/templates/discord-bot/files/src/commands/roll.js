import { SlashCommandBuilder } from 'discord.js';

export const data = new SlashCommandBuilder()
  .setName('roll')
  .setDescription('Roll dice')
  .addIntegerOption((option) =>
    option.setName('sides').setDescription('Sides per die (default 6)').setMinValue(2).setMaxValue(1000),
  )
  .addIntegerOption((option) =>
    option.setName('count').setDescription('How many dice (default 1)').setMinValue(1).setMaxValue(20),
  );

// Pure and exported, so it can be tested without Discord.
export function rollDice(sides, count, random = Math.random) {
  const rolls = Array.from({ length: count }, () => 1 + Math.floor(random() * sides));
  return { rolls, total: rolls.reduce((a, b) => a + b, 0) };
}

export async function execute(interaction) {
  const sides = interaction.options.getInteger('sides') ?? 6;
  const count = interaction.options.getInteger('count') ?? 1;
  const { rolls, total } = rollDice(sides, count);
  const detail = count > 1 ? ` (${rolls.join(' + ')})` : '';
  await interaction.reply(`🎲 ${count}d${sides}: **${total}**${detail}`);
}
