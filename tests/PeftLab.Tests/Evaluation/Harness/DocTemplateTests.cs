using PeftLab.Evaluation.Harness;

namespace PeftLab.Tests.Evaluation.Harness;

/// <summary>The Jinja subset of harness task files, rendered against documents as Jinja2 renders them.</summary>
public sealed class DocTemplateTests
{
    private static readonly Dictionary<string, object?> Doc = new()
    {
        ["question"] = "  What is 2+2? \n",
        ["choices"] = new Dictionary<string, object?> { ["text"] = new List<object?> { "3", "4", "five" }, ["label"] = new List<object?> { "A", "B", "C" } },
        ["answerKey"] = "B",
        ["options"] = new List<object?> { "red", "green", "blue", "it's" },
        ["answer"] = "Natalia sold 48 clips.\n#### 72",
        ["text"] = "the cat sat on the mat",
        ["answer_idx"] = 2L,
        ["score"] = 0.5,
    };

    // expected values written as Jinja2 (Python) renders each template against Doc
    [Theory]
    [InlineData("{{question.strip()}}\nA. {{options[0]}}\nB. {{options[1]}}\nAnswer:", "What is 2+2?\nA. red\nB. green\nAnswer:")]
    [InlineData("Question: {{question}}", "Question:   What is 2+2? \n")]
    [InlineData("{{choices.label.index(answerKey)}}", "1")]
    [InlineData("{{choices.text}}", "['3', '4', 'five']")]
    [InlineData("{{options}}", "['red', 'green', 'blue', \"it's\"]")]
    [InlineData("{{answer.split('####')[-1].strip()}}", "72")]
    [InlineData("{{text.split(' ')[:-1]|join(' ')}}", "the cat sat on the")]
    [InlineData("{{' '+text.split(' ')[-1]}}", " mat")]
    [InlineData("{{text.split()[1:3]}}", "['cat', 'sat']")]
    [InlineData("{{text[4:7]}}{{text[-3:]}}{{text[:3]}}{{text[100:]}}", "catmatthe")]
    [InlineData("{{question | trim | upper}}", "WHAT IS 2+2?")]
    [InlineData("{{ options | length }} {{options|first}} {{options|last}}", "4 red it's")]
    [InlineData("{{answer_idx}} {{score}} {{answer_idx ~ '!'}}", "2 0.5 2!")]
    [InlineData("{{choices['text'][answer_idx]}}", "five")]
    [InlineData("{{ [options[0], options[2]] }}", "['red', 'blue']")]
    [InlineData("{{text.replace('cat', 'dog').startswith('the dog')}}", "True")]
    [InlineData("plain text, no holes {not one}", "plain text, no holes {not one}")]
    [InlineData("{{\"a\\nb\"}}", "a\nb")]
    public void RendersAsJinja(string template, string expected) =>
        Assert.Equal(expected, DocTemplate.Parse(template).Render(Doc));

    [Fact]
    public void ASingleExpressionKeepsItsType()
    {
        Assert.Equal(1L, DocTemplate.Parse("{{choices.label.index(answerKey)}}").Evaluate(Doc));
        Assert.Equal(new List<object?> { "3", "4", "five" }, DocTemplate.Parse("{{choices.text}}").Evaluate(Doc));
        Assert.True(DocTemplate.Parse(" {{x}} ").IsSingleExpression is false);
    }

    [Theory]
    [InlineData("{{quesion}}", "the document has no field 'quesion' (its fields: question, choices, answerKey")]
    [InlineData("{{choices.txt}}", "'choices' has no field 'txt' (its fields: text, label)")]
    [InlineData("{{options[7]}}", "index 7 is out of range for 'options' (length 4)")]
    [InlineData("{{choices.label.index('Z')}}", "Z is not in 'choices.label' (['A', 'B', 'C'])")]
    [InlineData("{{question.title()}}", "a string 'question' has no method 'title' here")]
    [InlineData("{{options | reverse}}", "filter 'reverse' does not apply to a list here")]
    [InlineData("{{answer_idx + question}}", "cannot add an integer and a string")]
    [InlineData("{{ range(3) }}", "function calls (range(…)) are not supported")]
    [InlineData("{% for o in options %}{{o}}{% endfor %}", "Jinja statements ({% … %}) are not supported")]
    [InlineData("{{ options[1:2:1] }}", "slices with a step ([a:b:c]) are not supported")]
    [InlineData("{{ question ", "is never closed by '}}'")]
    [InlineData("{{ 'open }}", "a string literal is not closed")]
    public void MistakesAreErrorsNamingTheFieldAndTheTemplate(string template, string expected)
    {
        var e = Assert.Throws<TemplateException>(() => DocTemplate.Parse(template).Render(Doc));
        Assert.Contains(expected, e.Message);
        Assert.Contains("template \"", e.Message);
    }
}
