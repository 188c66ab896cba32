using System;
using System.Text;

namespace LlmEff.Generator.Emitting;

/// <summary>Builds C# text line by line with four-space indentation and '\n' line ends on every OS,
/// so generated files are byte-identical wherever they are generated.</summary>
internal sealed class SourceWriter
{
    private readonly StringBuilder text = new();
    private int depth;

    public SourceWriter Line(string line = "")
    {
        if (line.Length > 0) text.Append(' ', depth * 4).Append(line);
        text.Append('\n');
        return this;
    }

    /// <summary>Writes <paramref name="header"/>, an opening brace, and indents until the result is disposed.</summary>
    public IDisposable Block(string header)
    {
        Line(header);
        Line("{");
        depth++;
        return new Closer(this);
    }

    public override string ToString() => text.ToString();

    private sealed class Closer : IDisposable
    {
        private readonly SourceWriter writer;
        private bool closed;

        public Closer(SourceWriter writer) => this.writer = writer;

        public void Dispose()
        {
            if (closed) return;
            closed = true;
            writer.depth--;
            writer.Line("}");
        }
    }
}
