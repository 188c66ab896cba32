using System;
using System.Text;

namespace LlmEff.Generator.Emitting;

/// <summary>Builds Python text line by line: four-space indentation, '\n' line ends on every OS, so the emitted
/// module is byte-identical wherever it is generated.</summary>
internal sealed class PythonWriter
{
    private readonly StringBuilder text = new();
    private int depth;

    public PythonWriter Line(string line = "")
    {
        if (line.Length > 0) text.Append(' ', depth * 4).Append(line);
        text.Append('\n');
        return this;
    }

    /// <summary>Appends text that is already Python lines ending in '\n' (an included runtime block), unindented.</summary>
    public PythonWriter Text(string lines)
    {
        text.Append(lines);
        return this;
    }

    /// <summary>Writes <paramref name="header"/> (which ends with ':') and indents until the result is disposed.</summary>
    public IDisposable Block(string header)
    {
        Line(header);
        depth++;
        return new Dedent(this);
    }

    public override string ToString() => text.ToString();

    private sealed class Dedent : IDisposable
    {
        private readonly PythonWriter writer;
        private bool done;

        public Dedent(PythonWriter writer) => this.writer = writer;

        public void Dispose()
        {
            if (done) return;
            done = true;
            writer.depth--;
        }
    }
}
