using System;
using System.Linq;
using LlmEff.Checkpoints;
using LlmEff.Cli.Commands;
using LlmEff.Cli.LlamaCpp;
using LlmEff.Data;
using LlmEff.Export;
using LlmEff.Generation;
using LlmEff.Samples;
using LlmEff.Training;

namespace LlmEff.Cli.Tests;

/// <summary>
/// The tokenizer written into GGUF files, checked by llama.cpp itself: its tokenizer, reading our vocabulary, must
/// turn text into the ids our tokenizers give, and <c>generate --gguf</c> must continue a prompt as our module does.
/// </summary>
public sealed class GgufTokenizerTests
{
    // Spaces, punctuation, digits, two-byte and four-byte UTF-8, a newline and a tab: what splits and merges differently.
    private const string Text = "Hello, wörld! It's 2026: tokens\tand\nbytes 🙂 (ok)";

    [Fact]
    public void Gpt2s_byte_to_character_map_is_one_to_one_and_keeps_printable_bytes()
    {
        var map = GgufVocabulary.ByteCharacters();

        Assert.Equal(256, map.Distinct().Count());
        Assert.Equal('A', map['A']);
        Assert.Equal('\u0120', map[' ']); // GPT-2's "Ġ"
        Assert.Equal('\u0100', map[0]);
    }

    [Fact]
    public void The_gpt2_vocabulary_has_its_50257_tokens_50000_merges_and_end_of_text_last()
    {
        var vocabulary = GgufVocabulary.For("gpt2", 50257);

        Assert.Equal(50257, vocabulary.Tokens.Count);
        Assert.Equal(50000, vocabulary.Merges.Count);
        Assert.Equal("Ġ t", vocabulary.Merges[0]); // GPT-2's merges.txt starts with this pair
        Assert.Equal("<|endoftext|>", vocabulary.Tokens[50256]);
        Assert.Equal(GgufVocabulary.Control, vocabulary.TokenTypes[50256]);
        Assert.Equal(50256, vocabulary.EndOfText);
    }

    [Fact]
    public void A_model_vocabulary_smaller_than_the_tokenizers_is_refused_naming_both()
    {
        var error = Assert.Throws<ArgumentException>(() => GgufVocabulary.For("gpt2", 256));

        Assert.Contains("vocabulary of 256 is smaller than the gpt2 tokenizer's 50257", error.Message);
    }

    [Fact]
    public void Llama_cpp_reading_the_byte_vocabulary_tokenizes_text_into_its_utf8_bytes()
    {
        using var temp = new TempFolder();
        var path = temp.File("bytes.gguf");
        using var model = TinyDecoder.Create();
        GgufExporter.Export(model, path, vocabulary: GgufVocabulary.For("byte", TinyDecoder.Facts.Vocab));

        using var llama = new LlamaCppEngine(path, 16);
        var ours = new ByteTokenizer().Encode(Text).Select(id => (int)id).ToArray();

        Assert.Equal(ours, llama.Tokenize(Text));
        Assert.Equal(Text, llama.Detokenize(ours));
    }

    [Fact]
    public void Llama_cpp_reading_the_gpt2_vocabulary_tokenizes_text_as_gpt2s_bpe_does()
    {
        using var temp = new TempFolder();
        var path = temp.File("gpt2.gguf");
        using var model = Models.GgufGpt2Vocab.Create();
        GgufExporter.Export(model, path, vocabulary: GgufVocabulary.For("gpt2", Models.GgufGpt2Vocab.Facts.Vocab));

        using var llama = new LlamaCppEngine(path, 16);
        var ours = new Gpt2Tokenizer().Encode(Text).Select(id => (int)id).ToArray();

        Assert.True(ours.Length < Text.Length, "GPT-2's merges should join some bytes"); // the test means something
        Assert.Equal(ours, llama.Tokenize(Text));
        Assert.Equal(Text, llama.Detokenize(ours));
    }

    [Fact]
    public void A_vocabulary_that_does_not_fit_the_embedding_is_refused_naming_both_sizes()
    {
        using var temp = new TempFolder();
        using var model = Models.GgufGpt2Vocab.Create();

        var error = Assert.Throws<ArgumentException>(() => GgufExporter.Export(model, temp.File("x.gguf"), vocabulary: GgufVocabulary.For("byte", 300)));

        Assert.Contains("The byte vocabulary has 300 tokens; GgufGpt2Vocab embeds 50,257.", error.Message);
    }

    [Fact]
    public void Generate_with_a_gguf_file_continues_the_prompt_as_our_module_does_from_the_same_weights()
    {
        using var temp = new TempFolder();
        var checkpoint = temp.File("tiny.safetensors");
        var gguf = temp.File("tiny.gguf");
        Seeding.Seed(7);
        using var model = TinyDecoder.Create();
        Checkpoint.SaveWeights(checkpoint, model, TinyDecoder.Facts);
        Assert.Equal(0, CliHarness.Run("export-gguf", "TinyDecoder", "--checkpoint", checkpoint, "--out", gguf).ExitCode);

        var fromModule = CliHarness.Run("generate", "--checkpoint", checkpoint, "--prompt", "Once upon", "--tokens", "24", "--temperature", "0");
        var fromLlama = CliHarness.Run("generate", "--gguf", gguf, "--prompt", "Once upon", "--tokens", "24", "--temperature", "0");

        Assert.True(fromModule.ExitCode == 0, fromModule.Error);
        Assert.True(fromLlama.ExitCode == 0, fromLlama.Error);
        Assert.StartsWith("Once upon", fromLlama.Output);
        Assert.Equal(fromModule.Output, fromLlama.Output);
    }

    [Fact]
    public void Generate_refuses_a_checkpoint_and_a_gguf_file_together_and_tokens_past_the_context()
    {
        using var temp = new TempFolder();
        var gguf = temp.File("tiny.gguf");
        Assert.Equal(0, CliHarness.Run("export-gguf", "TinyDecoder", "--out", gguf).ExitCode);

        var both = CliHarness.Run("generate", "--gguf", gguf, "--checkpoint", gguf);
        var tooLong = CliHarness.Run("generate", "--gguf", gguf, "--prompt", "abc", "--tokens", "300");

        Assert.Equal(2, both.ExitCode);
        Assert.Contains("Give --checkpoint (our module) or --gguf (llama.cpp), not both.", both.Error);
        Assert.Equal(2, tooLong.ExitCode);
        Assert.Contains("--tokens 300: the prompt's 3 tokens plus 300 exceed the model's context of 256", tooLong.Error);
    }
}
