using System;
using System.Text;

namespace LlmEff.Data;

/// <summary>
/// The embedded default data set: English-like text from a small probabilistic grammar, generated from a
/// seed so that nothing is downloaded and every run sees the same bytes. It has the structure a language
/// model can learn at small scale (spelling, agreement, recurring phrases, punctuation) and enough
/// entropy (word choice) that the loss cannot reach zero.
/// </summary>
public static class SyntheticCorpus
{
    private static readonly string[] Names = { "Ada", "Ben", "Cleo", "Dara", "Emil", "Fay", "Gus", "Hana", "Ivo", "June", "Kai", "Lena" };
    private static readonly string[] Animals = { "cat", "dog", "fox", "owl", "horse", "rabbit", "crow", "goat", "mouse", "bear" };
    private static readonly string[] Things = { "box", "lamp", "kite", "boat", "letter", "apple", "coin", "map", "drum", "key", "book", "cup" };
    private static readonly string[] Places = { "the garden", "the river", "the market", "the old mill", "the forest", "the harbour", "the hill", "the library" };
    private static readonly string[] Adjectives = { "small", "red", "quiet", "bright", "old", "heavy", "strange", "green", "tiny", "warm" };
    private static readonly string[] Verbs = { "found", "lost", "carried", "painted", "opened", "hid", "shared", "mended", "sold", "watched" };
    private static readonly string[] Moves = { "walked to", "ran to", "came back from", "looked around", "waited near", "slept in" };
    private static readonly string[] Feelings = { "happy", "tired", "curious", "afraid", "proud", "calm" };
    private static readonly string[] Times = { "In the morning", "At noon", "Later", "That evening", "One day", "After the rain" };

    /// <summary>About <paramref name="characters"/> characters of text, deterministic in <paramref name="seed"/>.</summary>
    public static string Generate(int characters, int seed = 1)
    {
        if (characters <= 0) throw new ArgumentOutOfRangeException(nameof(characters), characters, "Corpus size must be positive.");
        var random = new Random(seed);
        var text = new StringBuilder(characters + 256);
        while (text.Length < characters)
        {
            AppendStory(text, random);
            text.Append('\n');
        }
        return text.ToString(0, characters);
    }

    private static void AppendStory(StringBuilder text, Random random)
    {
        // A story keeps one hero and one object, so later sentences can refer back to earlier ones.
        var hero = Pick(Names, random);
        var friend = Pick(Animals, random);
        var thing = Pick(Things, random);
        var adjective = Pick(Adjectives, random);
        text.Append(Pick(Times, random)).Append(", ").Append(hero).Append(" and the ").Append(friend)
            .Append(' ').Append(Pick(Moves, random)).Append(' ').Append(Pick(Places, random)).Append(". ");
        var sentences = 2 + random.Next(4);
        for (var i = 0; i < sentences; i++)
        {
            switch (random.Next(5))
            {
                case 0:
                    text.Append(hero).Append(' ').Append(Pick(Verbs, random)).Append(" a ").Append(adjective).Append(' ').Append(thing).Append(". ");
                    break;
                case 1:
                    text.Append("The ").Append(friend).Append(" was ").Append(Pick(Feelings, random)).Append(". ");
                    break;
                case 2:
                    text.Append("\"Where is the ").Append(thing).Append("?\" asked ").Append(hero).Append(". ");
                    break;
                case 3:
                    text.Append("The ").Append(adjective).Append(' ').Append(thing).Append(" was in ").Append(Pick(Places, random)).Append(". ");
                    break;
                default:
                    text.Append(hero).Append(" counted ").Append(1 + random.Next(9)).Append(' ').Append(thing).Append("s. ");
                    break;
            }
        }
        text.Append("The end.");
    }

    private static string Pick(string[] options, Random random) => options[random.Next(options.Length)];
}
