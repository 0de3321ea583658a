using System.Runtime.CompilerServices;

// Tests exercise the chunked copy paths with tiny chunk sizes.
[assembly: InternalsVisibleTo("PeftLab.Tests")]
