using System;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace LlmEff.Cli.Reporting;

/// <summary>System.Text.Json settings of <c>results.json</c>.</summary>
internal static class ReportJson
{
    /// <summary>camelCase, indented, readable non-ASCII, held-out points as <c>{"step":..,"loss":..}</c>.</summary>
    /// <remarks>
    /// Named floating-point literals are allowed because a diverged run has a NaN or infinite loss, and the report of
    /// a failed comparison is exactly the one worth keeping; by default the serializer would throw on it. Doubles are
    /// written in their shortest round-trippable form, which is the serializer's default.
    /// </remarks>
    public static JsonSerializerOptions Options { get; } = CreateOptions();

    private static JsonSerializerOptions CreateOptions()
    {
        var options = new JsonSerializerOptions
        {
            PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
            DictionaryKeyPolicy = JsonNamingPolicy.CamelCase,
            WriteIndented = true,
            NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
            // The file is data, never embedded in HTML, so "K := V" and "—" may stay as they are.
            Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        };
        options.Converters.Add(new StepLossConverter());
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }

    /// <summary>Writes <c>(int Step, double Loss)</c> as an object with named members.</summary>
    /// <remarks>
    /// Tuple element names exist only at compile time; left alone the serializer would write nothing (tuples expose
    /// fields) or, with fields included, <c>item1</c>/<c>item2</c>.
    /// </remarks>
    private sealed class StepLossConverter : JsonConverter<(int Step, double Loss)>
    {
        public override (int Step, double Loss) Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            if (reader.TokenType != JsonTokenType.StartObject)
                throw new JsonException("Expected an object {\"step\":..,\"loss\":..}.");
            int? step = null;
            double? loss = null;
            while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
            {
                if (reader.TokenType != JsonTokenType.PropertyName)
                    throw new JsonException("Expected a property name.");
                var name = reader.GetString();
                reader.Read();
                if (string.Equals(name, "step", StringComparison.OrdinalIgnoreCase))
                    step = reader.GetInt32();
                else if (string.Equals(name, "loss", StringComparison.OrdinalIgnoreCase))
                    loss = JsonSerializer.Deserialize<double>(ref reader, options);
                else
                    reader.Skip();
            }
            return (step ?? throw new JsonException("Missing \"step\"."), loss ?? throw new JsonException("Missing \"loss\"."));
        }

        public override void Write(Utf8JsonWriter writer, (int Step, double Loss) value, JsonSerializerOptions options)
        {
            writer.WriteStartObject();
            writer.WriteNumber("step", value.Step);
            writer.WritePropertyName("loss");
            // Through the serializer rather than WriteNumberValue, so a NaN loss follows NumberHandling instead of throwing.
            JsonSerializer.Serialize(writer, value.Loss, options);
            writer.WriteEndObject();
        }
    }
}
